package authoritytest

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd"
)

// backend opens the authority's store at every start, and checks what it
// left behind at every stop.
type backend struct {
	open  func() (storage.Store, error)
	check func() error
}

// newBackend chooses the store: a bbolt file at path, or etcd under
// Options.EtcdEndpoints.
func newBackend(opts Options, log *slog.Logger, path string) (backend, error) {
	if len(opts.EtcdEndpoints) == 0 {
		return backend{
			open: func() (storage.Store, error) { return bolt.Open(path, bolt.Options{Logger: log}) },
			// What bolttest checks at a test's end, at every stop: bbolt's
			// page check and the store's invariants.
			check: func() error { return bolt.Check(path) },
		}, nil
	}
	prefix := opts.EtcdPrefix
	if prefix == "" {
		var err error
		if prefix, err = newPrefix(); err != nil {
			return backend{}, err
		}
	}
	return backend{
		open: func() (storage.Store, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return etcd.Open(ctx, etcd.Options{Endpoints: opts.EtcdEndpoints, Prefix: prefix, Logger: log, MaxTxnOps: opts.EtcdMaxTxnOps})
		},
		// The data stays in etcd, which its owner checks, if at all.
		check: func() error { return nil },
	}, nil
}

// newPrefix returns a key prefix no other authority uses, even one of
// another test process on the same etcd.
func newPrefix() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return fmt.Sprintf("/authoritytest-%x", b), nil
}
