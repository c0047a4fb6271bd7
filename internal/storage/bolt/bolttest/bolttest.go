package bolttest

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
)

// Open opens a fresh store in t.TempDir(). See OpenPath.
func Open(t testing.TB, opts bolt.Options) *bolt.Store {
	t.Helper()
	return OpenPath(t, filepath.Join(t.TempDir(), "portcullis.db"), opts)
}

// OpenPath opens (or reopens) the store at path and registers a cleanup that
// closes it and runs bolt.Check on the file, failing the test on any
// inconsistency. The test may close the store itself, for example to reopen
// the file; the cleanup's Close is then a no-op. Without opts.Logger, the
// store logs to the test's output.
func OpenPath(t testing.TB, path string, opts bolt.Options) *bolt.Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	s, err := bolt.Open(path, opts)
	if err != nil {
		t.Fatalf("bolttest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("bolttest: close %s: %v", path, err)
		}
		if err := bolt.Check(path); err != nil {
			t.Errorf("bolttest: %v", err)
		}
	})
	return s
}
