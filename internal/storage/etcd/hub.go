package etcd

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

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
	go h.run(etcdRev + 1)
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

// reset empties the window after changes were lost to etcd's compaction:
// the hub now holds every change after head.
func (h *hub) reset(head int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.floor, h.changes = head, nil
	close(h.wake)
	h.wake = make(chan struct{})
}

func (h *hub) last() int64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if n := len(h.changes); n > 0 {
		return h.changes[n-1].Revision
	}
	return h.floor
}

// run follows the log from etcd revision from until the store closes.
func (h *hub) run(from int64) {
	s := h.s
	failures := 0
	for s.ctx.Err() == nil {
		if failures > 0 {
			t := time.NewTimer(min(50*time.Millisecond<<min(failures-1, 6), 2*time.Second))
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return
			}
		}
		next, err := h.follow(from)
		switch {
		case s.ctx.Err() != nil:
			return
		case errors.Is(err, storage.ErrCompacted):
			// Changes were lost between the last one held and etcd's
			// compaction: start over at the head (watchers behind it
			// read for themselves and learn what they missed).
			st, err := s.readLogState(s.ctx)
			if err != nil {
				failures++
				continue
			}
			h.reset(st.head)
			from, failures = st.etcdRev+1, 0
		case err != nil:
			s.log.Warn("the event log's shared watch ended; watching again", "after", h.last(), "err", err)
			from = next
			failures++
		default:
			from = next
			failures = 0
		}
	}
}

// follow runs one etcd watch from the given revision until it ends, and
// returns where the next one must start.
func (h *hub) follow(from int64) (int64, error) {
	s := h.s
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(s.ctx))
	defer cancel()
	for resp := range s.cli.Watch(ctx, s.k.log, clientv3.WithRev(from)) {
		last := h.last()
		if resp.CompactRevision != 0 {
			k, err := s.resumeAfterCompaction(s.ctx, last, resp.CompactRevision)
			if err != nil {
				return from, storage.ErrCompacted
			}
			return max(k, last+1), nil
		}
		if err := resp.Err(); err != nil || resp.Canceled {
			return last + 1, err
		}
		var cs []storage.Change
		for _, ev := range resp.Events {
			if ev.Kv.ModRevision <= last {
				continue
			}
			if ev.Type == mvccpb.DELETE {
				return ev.Kv.ModRevision + 1, storage.ErrCompacted // the prefix was wiped
			}
			c, err := decodeChange(ev.Kv.ModRevision, ev.Kv.Value)
			if err != nil {
				// Leave it to the watchers (each reads it and fails):
				// the window starts after it.
				s.log.Error("undecodable change in the event log", "revision", ev.Kv.ModRevision, "err", err)
				h.add(cs)
				h.reset(ev.Kv.ModRevision)
				cs, last = nil, ev.Kv.ModRevision
				continue
			}
			cs = append(cs, c)
			last = c.Revision
		}
		h.add(cs)
		from = last + 1
	}
	return from, s.ctx.Err()
}
