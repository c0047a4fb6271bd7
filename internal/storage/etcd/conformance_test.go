package etcd_test

import (
	"testing"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd/etcdtest"
	"github.com/portcullis-dev/portcullis/internal/storage/storagetest"
)

// TestConformance runs the storage conformance suite against one embedded
// etcd server; every subtest gets a store under a prefix of its own.
func TestConformance(t *testing.T) {
	m := etcdtest.Start(t, etcdtest.Config{})
	storagetest.RunTests(t, func(t *testing.T) storage.Store {
		return etcdtest.Open(t, etcd.Options{}, m)
	})
}
