package bolt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// initialMmapSize is the address space mapped for the file up front.
const initialMmapSize = 256 << 20

// Store is a storage.Store over one bbolt file.
type Store struct {
	db      *bbolt.DB
	path    string
	opts    Options
	log     *slog.Logger
	storeID string

	reqs       chan *request // to the writer
	closing    chan struct{} // closed by Close
	writerDone chan struct{} // closed when the writer has exited
	closeOnce  sync.Once
	closeErr   error

	// compacted only grows; Compact and the writer's retention both raise it.
	compacted atomic.Int64
	// ring holds the last committed changes (Options.WatchCache) and
	// wakes the watchers at the head after every commit that added some.
	ring *storage.Ring

	stats stats
}

// stats counts the writer's work; tests use it to see group commits happen.
type stats struct {
	commits  atomic.Int64 // bbolt commits by the writer
	attempts atomic.Int64 // transactions begun by the writer (commits + rollbacks)
}

var _ storage.Store = (*Store)(nil)

// Open opens the store in the bbolt file at path, creating the file (mode
// 0600, in an existing directory) and a fresh store on first use. It refuses
// a file of another schema version.
func Open(path string, opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:      opts.OpenTimeout,
		FreelistType: bbolt.FreelistMapType,
		// Growing the mapping waits for every open read transaction, so a
		// long View could stall the writer; mapping ahead (address space
		// only, the file still grows as needed) makes that rare.
		InitialMmapSize: initialMmapSize,
	})
	if err != nil {
		return nil, fmt.Errorf("storage/bolt: open %s: %w", path, err)
	}
	m, err := initSchema(db)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("storage/bolt: open %s: %w", path, err)
	}
	s := &Store{
		db:         db,
		path:       path,
		opts:       opts,
		log:        opts.Logger.With("store", m.storeID),
		storeID:    m.storeID,
		reqs:       make(chan *request, 4*opts.MaxBatch),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
		ring:       storage.NewRing(opts.WatchCache),
	}
	s.ring.Reset(m.revision)
	s.compacted.Store(m.compacted)
	go s.writeLoop()
	return s, nil
}

// StoreID returns the random ID created with the file.
func (s *Store) StoreID() string { return s.storeID }

// Path returns the file the store was opened from.
func (s *Store) Path() string { return s.path }

func (s *Store) closed() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// mapClosed turns bbolt's "database not open" into storage.ErrClosed.
func mapClosed(err error) error {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return storage.ErrClosed
	}
	return err
}

// View runs fn in a bbolt read transaction.
func (s *Store) View(ctx context.Context, fn func(storage.ReadTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed() {
		return storage.ErrClosed
	}
	btx, err := s.db.Begin(false)
	if err != nil {
		return fmt.Errorf("storage/bolt: view: %w", mapClosed(err))
	}
	defer func() { _ = btx.Rollback() }()
	rev, _, err := readCounters(btx)
	if err != nil {
		return err
	}
	t := &readTx{tx: btx, rev: rev}
	defer func() { t.done = true }()
	return fn(t)
}

// Close stops the writer (queued Updates that have not started get
// storage.ErrClosed), ends every watcher with storage.ErrClosed and closes
// the file once running transactions have finished. Closing twice is
// harmless.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		<-s.writerDone
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("storage/bolt: close: %w", err)
		}
	})
	return s.closeErr
}
