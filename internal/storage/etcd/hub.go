package etcd

import (
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// hubSize is how many recent changes the hub keeps for watchers (a
// variable for tests).
var hubSize = 1024

// hub follows the log key with one etcd watch on behalf of every watcher of
// the store that is near the head: each change is received and decoded
// once, kept in the store's storage.Ring and shared (read-only) by all of
// them, instead of one etcd watch and one decode per watcher. A watcher
// further behind than the ring's window follows its own etcd watch until
// it has caught up.
type hub struct {
	s    *Store
	ring *storage.Ring
}

func newHub(s *Store) *hub { return &hub{s: s, ring: storage.NewRing(hubSize)} }

// start begins following the log after head, whose etcd revision was
// etcdRev, unless the hub follows already.
func (h *hub) start(head, etcdRev int64) {
	if h.ring.Start(head) {
		go h.run(head, etcdRev+1)
	}
}

// reset empties the ring after its follower failed: the ring now holds
// every change after head. When head is before the last change the ring
// had, the log was deleted (a wiped prefix): the floor goes past that
// change instead, so that no watcher the hub served waits on it for a log
// that is gone; each reads for itself and sees the deletion. It returns
// the new floor.
func (h *hub) reset(head int64) int64 {
	if last := h.ring.Last(); head < last {
		head = last + 1 // no change has that revision: the log is absent
	}
	h.ring.Reset(head)
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
	var entries []*storage.Entry
	for {
		cs, err := f.next(s.ctx)
		if s.ctx.Err() != nil {
			return
		}
		if err == nil {
			entries = entries[:0]
			for _, c := range cs {
				entries = append(entries, storage.DecodedEntry(c))
			}
			h.ring.Append(entries...)
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
