package bolt

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

const (
	// retentionChunk bounds how many old changes one commit deletes, so a
	// lowered RetainRevisions is caught up over several commits instead of
	// one long transaction. A batch adds at most MaxBatch changes, so the
	// log still shrinks towards its bound with every commit.
	retentionChunk = 1024
	// compactChunk bounds one transaction of Compact.
	compactChunk = 10000
)

// trimEvents deletes at most chunk of the oldest changes so that at most
// retain revisions remain, and returns the new compacted revision (written
// to meta when it moved).
func trimEvents(btx *bbolt.Tx, rev, compacted, retain int64, chunk int) (int64, error) {
	target := rev - retain
	if target <= compacted {
		return compacted, nil
	}
	return deleteEvents(btx, compacted, target, chunk)
}

// deleteEvents deletes the changes after compacted up to target, at most
// chunk of them, records the new compacted revision and returns it.
func deleteEvents(btx *bbolt.Tx, compacted, target int64, chunk int) (int64, error) {
	if target-compacted > int64(chunk) {
		target = compacted + int64(chunk)
	}
	b := btx.Bucket(bucketEvents)
	if b == nil {
		return 0, fmt.Errorf("%w: bucket %s is missing", errCorrupt, bucketEvents)
	}
	// Collect first: deleting under a moving cursor skips keys in bbolt.
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(revKey(compacted + 1)); k != nil; k, _ = c.Next() {
		r, err := parseRev(k)
		if err != nil {
			return 0, fmt.Errorf("%w: events key: %w", errCorrupt, err)
		}
		if r > target {
			break
		}
		keys = append(keys, k)
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return 0, fmt.Errorf("storage/bolt: delete change: %w", err)
		}
	}
	if err := putCounter(btx, metaCompacted, target); err != nil {
		return 0, err
	}
	return target, nil
}

// raiseCompacted records a new compacted revision unless a concurrent
// compaction already recorded a later one.
func (s *Store) raiseCompacted(rev int64) {
	for {
		cur := s.compacted.Load()
		if rev <= cur || s.compacted.CompareAndSwap(cur, rev) {
			return
		}
	}
}

// publish makes committed changes visible to watchers (and wakes them).
func (s *Store) publish(changes []*storage.Entry) { s.ring.Append(changes...) }

// Compact deletes the changes up to and including revision, in transactions
// of bounded size. Compacting to a revision already compacted is a no-op;
// one after the current revision is storage.ErrFutureRevision.
func (s *Store) Compact(ctx context.Context, revision int64) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.closed() {
			return storage.ErrClosed
		}
		var done bool
		var compacted int64
		err := s.db.Update(func(btx *bbolt.Tx) error {
			rev, c, err := readCounters(btx)
			if err != nil {
				return err
			}
			if revision > rev {
				return fmt.Errorf("storage/bolt: compact to %d, current revision is %d: %w", revision, rev, storage.ErrFutureRevision)
			}
			if revision <= c {
				done, compacted = true, c
				return nil
			}
			compacted, err = deleteEvents(btx, c, revision, compactChunk)
			done = compacted == revision
			return err
		})
		if err != nil {
			return mapClosed(err)
		}
		s.raiseCompacted(compacted)
		if done {
			return nil
		}
	}
}
