package storage

import (
	"sort"
	"sync"
	"sync/atomic"
)

// Ring holds a store's most recent changes for its watchers, so that every
// watcher near the head takes them from memory: a change is decoded at most
// once and shared (read-only) by all of them, as is what a consumer derives
// from it (Change.Slot). Both backends keep one; a watcher behind the ring's
// window reads the changes from the store itself. All methods are safe for
// concurrent use.
type Ring struct {
	size int

	mu sync.RWMutex
	// started: floor is known; the ring holds every change after it.
	started bool
	floor   int64
	entries []*Entry // in revision order; at most size
	// wake is closed and replaced whenever entries grows or the window
	// moves: the broadcast that wakes watchers waiting at the head.
	wake chan struct{}
}

// NewRing returns a ring of at most size changes (0: none are kept, only
// the head is followed). It holds nothing until Reset.
func NewRing(size int) *Ring {
	return &Ring{size: max(size, 0), wake: make(chan struct{})}
}

// Entry is one change in a Ring, decoded when first needed.
type Entry struct {
	Revision int64
	raw      []byte
	decode   func(rev int64, raw []byte) (Change, error)

	once   sync.Once
	change Change
	err    error
	slot   Slot
}

// NewEntry is the change rev whose encoding raw decode decodes when a
// watcher first needs it: the writer never pays for decoding.
func NewEntry(rev int64, raw []byte, decode func(rev int64, raw []byte) (Change, error)) *Entry {
	return &Entry{Revision: rev, raw: raw, decode: decode}
}

// DecodedEntry is a change decoded already.
func DecodedEntry(c Change) *Entry {
	e := &Entry{Revision: c.Revision}
	e.once.Do(func() { e.change, e.change.slot = c, &e.slot })
	return e
}

// Change returns the entry's change, decoding it on the first call.
func (e *Entry) Change() (Change, error) {
	e.once.Do(func() {
		e.change, e.err = e.decode(e.Revision, e.raw)
		e.change.slot, e.raw = &e.slot, nil
	})
	return e.change, e.err
}

// Slot holds one value that a consumer derives from a change (the server
// keeps the change encoded for the wire there), shared by every watcher
// that takes the change from a Ring. Each store may replace it.
type Slot struct{ atomic.Value }

// Slot returns the change's shared slot, nil when the change was not taken
// from a Ring (it was read on its own, for one watcher).
func (c Change) Slot() *Slot { return c.slot }

// Reset empties the ring, which now holds every change after floor (none
// yet), and wakes its watchers.
func (r *Ring) Reset(floor int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started, r.floor, r.entries = true, floor, nil
	r.notifyLocked()
}

// Start is Reset unless the ring is started already; it reports whether it
// started the ring.
func (r *Ring) Start(floor int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return false
	}
	r.started, r.floor = true, floor
	return true
}

// Append adds the changes that follow the ring's last one, in revision
// order, dropping the oldest beyond its size (it keeps from size to an
// eighth more), and wakes the watchers.
func (r *Ring) Append(es ...*Entry) {
	if len(es) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = append(r.entries, es...)
	// Trimmed to size only once it holds an eighth more, so that an append
	// copies the window once per size/8 changes, not every time.
	if len(r.entries) > r.size+r.size/8 {
		n := len(r.entries) - r.size
		r.floor = r.entries[n-1].Revision
		r.entries = append(r.entries[:0:0], r.entries[n:]...)
	}
	r.notifyLocked()
}

func (r *Ring) notifyLocked() {
	close(r.wake)
	r.wake = make(chan struct{})
}

// Last is the revision of the ring's last change, its floor when it holds
// none.
func (r *Ring) Last() int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if n := len(r.entries); n > 0 {
		return r.entries[n-1].Revision
	}
	return r.floor
}

// Covers reports whether the ring holds every change after rev.
func (r *Ring) Covers(rev int64) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.started && rev >= r.floor
}

// After appends to dst up to max of the changes after rev. When it holds
// none yet, it returns the channel closed when there may be. covered is
// false when the ring does not hold every change after rev: the watcher
// reads them from the store.
func (r *Ring) After(rev int64, dst []*Entry, max int) (_ []*Entry, wake <-chan struct{}, covered bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if !r.started || rev < r.floor {
		return dst, nil, false
	}
	i := sort.Search(len(r.entries), func(i int) bool { return r.entries[i].Revision > rev })
	if i == len(r.entries) {
		return dst, r.wake, true
	}
	for ; i < len(r.entries) && len(dst) < max; i++ {
		dst = append(dst, r.entries[i])
	}
	return dst, nil, true
}
