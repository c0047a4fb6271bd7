package server

import (
	"context"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// snapshotMaxAge bounds how long a built snapshot is kept for reuse, so an
// idle authority does not hold a large one in memory forever.
const snapshotMaxAge = time.Minute

// snapshotCache shares one snapshot among the subscribers that need one at
// the same store revision. When a fleet's mirrors reconnect together (an
// authority restart, a deploy), each would otherwise read every ban and
// session from the store: one read, one conversion and one encoding of
// each part (sharedMsg) serve them all.
// Reusing a snapshot built a little earlier at the same revision is safe:
// a ban or revoked session that expired meanwhile is one the mirror prunes
// by time anyway.
type snapshotCache struct {
	mu       sync.Mutex
	rev      int64
	built    time.Time
	parts    []*sharedMsg // the snapshot's responses, each encoded once for every stream
	building chan struct{}
}

// sharedSnapshot returns the responses of a snapshot, in order (at least
// one; splitSnapshot), and the revision it reflects. Every part's
// server_time is when it was built.
func (s *Server) sharedSnapshot(ctx context.Context) (int64, []*sharedMsg, error) {
	c := &s.snapshots
	for {
		var cur int64
		if err := s.auth.Store().View(ctx, func(tx storage.ReadTx) error { cur = tx.Revision(); return nil }); err != nil {
			return 0, nil, err
		}
		c.mu.Lock()
		if c.parts != nil && c.rev == cur && time.Since(c.built) < snapshotMaxAge {
			rev, parts := c.rev, c.parts
			c.mu.Unlock()
			return rev, parts, nil
		}
		if wait := c.building; wait != nil {
			c.mu.Unlock()
			select {
			case <-wait:
				continue // use what it built, if still current
			case <-ctx.Done():
				return 0, nil, ctx.Err()
			}
		}
		done := make(chan struct{})
		c.building = done
		c.mu.Unlock()

		w := newSnapshotWriter(s.auth.Store().StoreID(), s.opts.SnapshotPartSize)
		err := s.auth.StreamSnapshot(ctx, w)
		var parts []*sharedMsg
		if err == nil {
			parts = w.finish()
		}
		c.mu.Lock()
		if err == nil {
			c.rev, c.built, c.parts = w.rev, time.Now(), parts
		}
		c.building = nil
		close(done)
		rev, out := c.rev, c.parts
		c.mu.Unlock()
		if err != nil {
			return 0, nil, err
		}
		return rev, out, nil
	}
}
