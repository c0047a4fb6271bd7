package etcd

import (
	"sort"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// hubSize is how many recent changes the hub keeps for watchers (a
// variable for tests).
var hubSize = 1024

// hub follows the log key with one etcd watch on behalf of every watcher of
// the store that is near the head: each change is received and decoded
// once, and shared (read-only) by all of them, instead of one etcd watch
// and one decode per watcher. A watcher further behind than the hub's
// window follows its own etcd watch until it has caught up.
type hub struct {
	s *Store

	mu      sync.RWMutex
	started bool
	// floor: every change with a revision above it is in changes. Changes
	// are in revision order.
	floor   int64
	changes []storage.Change
	// wake is closed and replaced whenever changes grows or the window
	// moves: the broadcast that wakes watchers waiting at the head.
	wake chan struct{}
}

func newHub(s *Store) *hub { return &hub{s: s, wake: make(chan struct{})} }

// start begins following the log after head, whose etcd revision was
// etcdRev, unless the hub follows already.
func (h *hub) start(head, etcdRev int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started {
		return
	}
	h.started, h.floor = true, head
	go h.run(head, etcdRev+1)
}

// after returns the first change after rev, or (when there is none yet) the
// channel that is closed when there may be. covered is false when the hub
// does not hold every change after rev: the watcher must read them itself.
func (h *hub) after(rev int64) (c storage.Change, ok bool, wake <-chan struct{}, covered bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if !h.started || rev < h.floor {
		return storage.Change{}, false, nil, false
	}
	i := sort.Search(len(h.changes), func(i int) bool { return h.changes[i].Revision > rev })
	if i < len(h.changes) {
		return h.changes[i], true, nil, true
	}
	return storage.Change{}, false, h.wake, true
}

// covers reports whether the hub holds every change after rev.
func (h *hub) covers(rev int64) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.started && rev >= h.floor
}

func (h *hub) add(cs []storage.Change) {
	if len(cs) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.changes = append(h.changes, cs...)
	if n := len(h.changes) - hubSize; n > 0 {
		h.floor = h.changes[n-1].Revision
		h.changes = append(h.changes[:0:0], h.changes[n:]...)
	}
	close(h.wake)
	h.wake = make(chan struct{})
}

// reset empties the window after its follower failed: the hub now holds
// every change after head. When head is before the last change the hub
// had, the log was deleted (a wiped prefix): the floor goes past that
// change instead, so that no watcher the hub served waits on it for a log
// that is gone; each reads for itself and sees the deletion. It returns
// the new floor.
func (h *hub) reset(head int64) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	last := h.floor
	if n := len(h.changes); n > 0 {
		last = h.changes[n-1].Revision
	}
	if head < last {
		head = last + 1 // no change has that revision: the log is absent
	}
	h.floor, h.changes = head, nil
	close(h.wake)
	h.wake = make(chan struct{})
	return head
}

// run follows the log after head, from etcd revision from, until the store
// closes. When its follower fails (a change lost to etcd's compaction, the
// log deleted, or an undecodable change), the hub starts over at the head:
// watchers behind it read for themselves, and meet the failure themselves.
func (h *hub) run(head, from int64) {
	s := h.s
	f := s.newFollower(s.ctx, head, from)
	failures := 0
	for {
		cs, err := f.next(s.ctx)
		if s.ctx.Err() != nil {
			return
		}
		if err == nil {
			h.add(cs)
			continue
		}
		if failures == 0 {
			s.log.Warn("the event log's shared watch failed; starting over at the head", "err", err)
		}
		if failures > 0 {
			t := time.NewTimer(restartDelay(failures))
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return
			}
		}
		st, err := s.readLogState(s.ctx)
		if err != nil {
			failures++
			continue
		}
		floor := h.reset(st.head)
		f, failures = s.newFollower(s.ctx, floor, st.etcdRev+1), 0
	}
}
