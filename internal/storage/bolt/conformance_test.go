package bolt_test

import (
	"testing"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt/bolttest"
	"github.com/portcullis-dev/portcullis/internal/storage/storagetest"
)

// The suite runs with the watch cache and without it, so that both ways a
// watcher reads (memory, file) meet the contract.
func TestConformance(t *testing.T) {
	for _, c := range []struct {
		name string
		opts bolt.Options
	}{
		{"default", bolt.Options{}},
		{"nocache", bolt.Options{WatchCache: -1}},
		{"tinycache", bolt.Options{WatchCache: 2, MaxBatch: 3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			storagetest.RunTests(t, func(t *testing.T) storage.Store {
				return bolttest.Open(t, c.opts)
			})
		})
	}
}
