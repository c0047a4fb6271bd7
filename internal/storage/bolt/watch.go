package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"

	"go.etcd.io/bbolt"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// watchPage is how many changes a watcher reads per read transaction (or
// per visit to the ring).
const watchPage = 128

// decodeChange decodes the stored change rev.
func decodeChange(rev int64, raw []byte) (storage.Change, error) {
	var c storage.Change
	if err := json.Unmarshal(raw, &c); err != nil {
		return storage.Change{}, fmt.Errorf("%w: change %d: %w", errCorrupt, rev, err)
	}
	return c, nil
}

// Watch returns a watcher of the changes after afterRevision. It checks the
// revision against the file, not against the in-memory head, so a revision
// just read with View is never mistaken for a future one. ctx bounds only
// this call: the watcher lives until it or the store is closed.
func (s *Store) Watch(ctx context.Context, afterRevision int64) (storage.Watcher, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.closed() {
		return nil, storage.ErrClosed
	}
	var rev, compacted int64
	err := s.db.View(func(btx *bbolt.Tx) error {
		var err error
		rev, compacted, err = readCounters(btx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("storage/bolt: watch: %w", mapClosed(err))
	}
	if afterRevision < compacted {
		return nil, fmt.Errorf("storage/bolt: watch after %d, compacted up to %d: %w", afterRevision, compacted, storage.ErrCompacted)
	}
	if afterRevision > rev {
		return nil, fmt.Errorf("storage/bolt: watch after %d, current revision is %d: %w", afterRevision, rev, storage.ErrFutureRevision)
	}
	w := &watcher{s: s, done: make(chan struct{})}
	w.rev.Store(afterRevision)
	return w, nil
}

// watcher follows the event log. Next is meant for one goroutine; Revision
// and Close may be called from any.
type watcher struct {
	s         *Store
	rev       atomic.Int64
	done      chan struct{}
	closeOnce sync.Once

	buf    []storage.Change // read ahead, not yet returned
	pos    int
	cached []*storage.Entry // scratch for ring lookups
}

var _ storage.Watcher = (*watcher)(nil)

func (w *watcher) Revision() int64 { return w.rev.Load() }

func (w *watcher) Close() { w.closeOnce.Do(func() { close(w.done) }) }

// Next returns the next change: from what it read ahead, else from the
// store's ring or the file, else it waits for the writer's next commit.
func (w *watcher) Next(ctx context.Context) (storage.Change, error) {
	s := w.s
	for {
		select {
		case <-w.done:
			return storage.Change{}, storage.ErrClosed
		case <-s.closing:
			return storage.Change{}, storage.ErrClosed
		default:
		}
		if w.pos < len(w.buf) {
			c := w.buf[w.pos]
			w.buf[w.pos] = storage.Change{} // let the change go once returned
			w.pos++
			w.rev.Store(c.Revision)
			return c, nil
		}
		rev := w.rev.Load()
		if compacted := s.compacted.Load(); rev < compacted {
			return storage.Change{}, fmt.Errorf("storage/bolt: watcher at %d, compacted up to %d: %w", rev, compacted, storage.ErrCompacted)
		}
		// The ring holds every change after its floor, or says what to wait
		// on: a commit after this look closes wake.
		var wake <-chan struct{}
		var covered bool
		w.buf, w.pos = w.buf[:0], 0
		w.cached, wake, covered = s.ring.After(rev, w.cached[:0], watchPage)
		for i, e := range w.cached {
			c, err := e.Change()
			if err != nil {
				return storage.Change{}, err
			}
			w.buf = append(w.buf, c)
			w.cached[i] = nil
		}
		if !covered && len(w.buf) == 0 {
			// Behind the ring's window: the file has the changes.
			if err := w.readPage(rev); err != nil {
				return storage.Change{}, err
			}
		}
		if len(w.buf) > 0 {
			continue
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return storage.Change{}, ctx.Err()
		case <-w.done:
			return storage.Change{}, storage.ErrClosed
		case <-s.closing:
			return storage.Change{}, storage.ErrClosed
		}
	}
}

// readPage reads up to watchPage changes after rev from the file, in one
// short read transaction.
func (w *watcher) readPage(rev int64) error {
	err := w.s.db.View(func(btx *bbolt.Tx) error {
		_, compacted, err := readCounters(btx)
		if err != nil {
			return err
		}
		if rev < compacted {
			return fmt.Errorf("storage/bolt: watcher at %d, compacted up to %d: %w", rev, compacted, storage.ErrCompacted)
		}
		b := btx.Bucket(bucketEvents)
		if b == nil {
			return fmt.Errorf("%w: bucket %s is missing", errCorrupt, bucketEvents)
		}
		c := b.Cursor()
		for k, v := c.Seek(revKey(rev + 1)); k != nil && len(w.buf) < watchPage; k, v = c.Next() {
			r, _ := parseRev(k)
			ch, err := decodeChange(r, v)
			if err != nil {
				return err
			}
			w.buf = append(w.buf, ch)
		}
		return nil
	})
	return mapClosed(err)
}
