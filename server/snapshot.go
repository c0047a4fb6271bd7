package server

import (
	"context"
	"errors"
	"iter"
	"sync"
	"time"
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
	mu  sync.Mutex
	cur *snapshotBuild // the latest snapshot, built or being built
}

// snapshotBuild is one snapshot, whose parts are published as they are
// encoded: subscribers send each part as soon as it exists, so that the
// authority reading and encoding the store and the subscribers receiving
// and applying the parts overlap, instead of a large snapshot's first part
// waiting for its last to be encoded.
type snapshotBuild struct {
	began chan struct{} // closed once rev is set, or the build failed before

	mu      sync.Mutex
	rev     int64
	parts   []*sharedMsg
	done    bool
	err     error
	built   time.Time     // when it was done
	changed chan struct{} // closed (and replaced) when parts, done or err change
}

func newSnapshotBuild() *snapshotBuild {
	return &snapshotBuild{began: make(chan struct{}), changed: make(chan struct{})}
}

// errSnapshotRestarted: the store ran a snapshot's read again after parts
// of it had been published (neither backend does); subscribers take another.
var errSnapshotRestarted = errors.New("server: snapshot read restarted after parts were sent")

// begin sets the revision, once.
func (b *snapshotBuild) begin(rev int64) error {
	select {
	case <-b.began:
		b.mu.Lock()
		defer b.mu.Unlock()
		if len(b.parts) > 0 || rev != b.rev {
			return errSnapshotRestarted
		}
		return nil
	default:
	}
	b.mu.Lock()
	b.rev = rev
	b.mu.Unlock()
	close(b.began)
	return nil
}

func (b *snapshotBuild) publish(m *sharedMsg) {
	b.mu.Lock()
	b.parts = append(b.parts, m)
	b.notifyLocked()
	b.mu.Unlock()
}

func (b *snapshotBuild) finish(err error) {
	b.mu.Lock()
	b.done, b.err, b.built = true, err, time.Now()
	b.notifyLocked()
	b.mu.Unlock()
	select {
	case <-b.began:
	default:
		close(b.began) // failed before its revision was known
	}
}

func (b *snapshotBuild) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// state returns what a subscriber decides on.
func (b *snapshotBuild) state() (rev int64, done bool, err error, built time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rev, b.done, b.err, b.built
}

// waitDone waits until the build is done.
func (b *snapshotBuild) waitDone(ctx context.Context) error {
	for {
		b.mu.Lock()
		done, ch := b.done, b.changed
		b.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// each yields the snapshot's responses in order (at least one), waiting
// for those not yet encoded, then the build's error if it failed.
func (b *snapshotBuild) each(ctx context.Context) iter.Seq2[*sharedMsg, error] {
	return func(yield func(*sharedMsg, error) bool) {
		for i := 0; ; i++ {
			b.mu.Lock()
			for i >= len(b.parts) && !b.done {
				ch := b.changed
				b.mu.Unlock()
				select {
				case <-ch:
				case <-ctx.Done():
					yield(nil, ctx.Err())
					return
				}
				b.mu.Lock()
			}
			if i < len(b.parts) {
				p := b.parts[i]
				b.mu.Unlock()
				if !yield(p, nil) {
					return
				}
				continue
			}
			err := b.err
			b.mu.Unlock()
			if err != nil {
				yield(nil, err)
			}
			return
		}
	}
}

// sharedSnapshot returns a snapshot at the store's current revision (or
// one built moments ago at that revision), its revision known, its parts
// (snapshotBuild.each) possibly still being encoded. One snapshot is built
// at a time; it is built in a goroutine of its own, so that it serves
// every subscriber waiting for it whichever of them goes away.
func (s *Server) sharedSnapshot(ctx context.Context) (*snapshotBuild, error) {
	c := &s.snapshots
	var started *snapshotBuild
	for {
		cur, err := s.auth.Revision(ctx)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		b := c.cur
		c.mu.Unlock()
		if b != nil {
			select {
			case <-b.began:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			rev, done, err, built := b.state()
			switch {
			case b == started && err != nil:
				return nil, err
			case err == nil && rev == cur && (!done || time.Since(built) < snapshotMaxAge):
				return b, nil
			case !done:
				if err := b.waitDone(ctx); err != nil { // then use a newer one
					return nil, err
				}
				continue
			}
		}
		c.mu.Lock()
		if c.cur == b {
			started = newSnapshotBuild()
			c.cur = started
			go s.buildSnapshot(started)
		}
		c.mu.Unlock()
	}
}

// buildSnapshot reads and encodes a snapshot into b, publishing each part
// as it is cut. Server shutdown cancels it.
func (s *Server) buildSnapshot(b *snapshotBuild) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	w := newSnapshotWriter(s.auth.StoreID(), s.opts.SnapshotPartSize, b)
	err := s.auth.StreamSnapshot(ctx, w)
	if err == nil {
		w.finish()
	}
	b.finish(err)
}
