package fleet

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Identity is what a reporting mirror says it is.
type Identity struct {
	Service, InstanceID, Version string
}

// identityLimit bounds each field of an Identity kept in the registry.
const identityLimit = 200

func bounded(v string) string {
	if len(v) > identityLimit {
		v = v[:identityLimit]
	}
	return strings.ToValidUTF8(v, "")
}

// Subscriber is one open Watch stream. The exported fields are set before
// Add and never change.
type Subscriber struct {
	Caller string
	KeyID  string // the API key it authenticated with; only it may report
	Peer   string
	Since  time.Time // by the authority's clock, for listing
	// Connected is Since by the wall clock, which the progress timeout is
	// measured with (the authority's clock may stand still in tests, or
	// jump).
	Connected time.Time
	// Identity is set for a mirror that reports its progress.
	Identity *Identity

	id string // set by Add when Identity is set
	// revision is the last revision offered to it: stored before the
	// message that brings the subscriber to it is sent (a change, a
	// checkpoint, a snapshot's last part), so that a report of it, which
	// can come as soon as the message is out, is never refused.
	revision atomic.Int64
	applied  atomic.Int64  // the last revision it reported applied
	reported atomic.Int64  // unix ns (wall clock) of its last report; 0: none
	gone     chan struct{} // closed when its stream ends
	// loading is the revision of the snapshot the stream began with until
	// the subscriber reports it (or later), LoadingUnknown while the
	// snapshot is being built, 0 otherwise.
	loading atomic.Int64
}

// LoadingUnknown is what SetLoading is given while a subscriber's snapshot
// is being built: no report can reach it.
const LoadingUnknown = math.MaxInt64

// ID is the subscriber_id of a reporting subscriber, "" for another.
func (s *Subscriber) ID() string { return s.id }

// Reporting reports whether the subscriber sent an identity.
func (s *Subscriber) Reporting() bool { return s.id != "" }

// Offer records that the message bringing the subscriber to rev is about
// to be sent.
func (s *Subscriber) Offer(rev int64) { s.revision.Store(rev) }

// Revision is the last revision offered to the subscriber.
func (s *Subscriber) Revision() int64 { return s.revision.Load() }

// Applied is the last revision the subscriber reported applied.
func (s *Subscriber) Applied() int64 { return s.applied.Load() }

// LastReport is when the subscriber last reported (wall clock); ok is
// false before its first report.
func (s *Subscriber) LastReport() (t time.Time, ok bool) {
	if ns := s.reported.Load(); ns != 0 {
		return time.Unix(0, ns), true
	}
	return time.Time{}, false
}

// SetLoading records that the subscriber loads the snapshot of rev
// (LoadingUnknown while it is built) until it reports rev.
func (s *Subscriber) SetLoading(rev int64) { s.loading.Store(rev) }

// Loading is the revision of the snapshot the subscriber loads, 0 when
// none.
func (s *Subscriber) Loading() int64 { return s.loading.Load() }

// Gone is closed when the subscriber's stream has ended.
func (s *Subscriber) Gone() <-chan struct{} { return s.gone }

// lastHeard is when the subscriber last reported, or connected.
func (s *Subscriber) lastHeard() time.Time {
	if t, ok := s.LastReport(); ok {
		return t
	}
	return s.Connected
}

// Errors of the registry; the server maps them to statuses.
var (
	// ErrUnknownSubscriber: a report for no Watch stream of that API key on
	// this replica.
	ErrUnknownSubscriber = errors.New("no Watch stream of this API key with that subscriber_id on this authority replica")
	// ErrSubscriberGone: the Watch stream a progress stream reports for
	// has ended.
	ErrSubscriberGone = errors.New("the Watch stream this stream reports for has ended")
	// ErrRevisionNotSent: a report of a revision beyond the one offered on
	// the subscriber's stream (RevisionNotSentError has the revisions).
	ErrRevisionNotSent = errors.New("progress report refused: the revision was never sent on this subscriber's stream")
)

// RevisionNotSentError is ErrRevisionNotSent with the revisions.
type RevisionNotSentError struct{ Reported, Sent int64 }

func (e *RevisionNotSentError) Error() string {
	return fmt.Sprintf("%v (reported %d, sent %d)", ErrRevisionNotSent, e.Reported, e.Sent)
}

func (e *RevisionNotSentError) Unwrap() error { return ErrRevisionNotSent }

// registry holds one replica's Watch streams.
type registry struct {
	mu   sync.Mutex
	next int
	all  map[int]*Subscriber
	byID map[string]*Subscriber
	// changed fires whenever a subscriber reports or leaves: waiters
	// re-examine their set then, and only then.
	changed broadcast
}

// broadcast wakes every waiter at once, without a timer or a queue.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns the channel closed at the next notify. Take it before
// examining what it announces, so that no change is missed.
func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

func (b *broadcast) notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}

// Add registers s and returns the function that removes it (when its
// stream ends). A reporting subscriber gets its ID here, and its Identity
// is replaced by a copy bounded in size.
func (f *Fleet) Add(s *Subscriber) (remove func()) {
	r := &f.subs
	s.gone = make(chan struct{})
	if id := s.Identity; id != nil {
		s.Identity = &Identity{Service: bounded(id.Service), InstanceID: bounded(id.InstanceID), Version: bounded(id.Version)}
		var b [12]byte
		rand.Read(b[:])
		s.id = "sub_" + hex.EncodeToString(b[:])
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.all == nil {
		r.all, r.byID = map[int]*Subscriber{}, map[string]*Subscriber{}
	}
	n := r.next
	r.next++
	r.all[n] = s
	if s.id != "" {
		r.byID[s.id] = s
	}
	return func() {
		r.mu.Lock()
		delete(r.all, n)
		if s.id != "" {
			delete(r.byID, s.id)
		}
		close(s.gone)
		r.mu.Unlock()
		r.changed.notify()
	}
}

// Report records that subscriber id, of API key keyID, has applied rev at
// now (wall clock), and returns it and whether the report finished the
// loading of its snapshot. A revision beyond the one offered to the
// subscriber is refused and not recorded at all.
func (f *Fleet) Report(id, keyID string, rev int64, now time.Time) (_ *Subscriber, loaded bool, _ error) {
	r := &f.subs
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.byID[id]
	if !ok || s.KeyID != keyID {
		return nil, false, fmt.Errorf("%w (subscriber_id %q)", ErrUnknownSubscriber, id)
	}
	if sent := s.revision.Load(); rev > sent {
		return s, false, &RevisionNotSentError{Reported: rev, Sent: sent}
	}
	if rev > s.applied.Load() {
		s.applied.Store(rev)
	}
	if l := s.loading.Load(); l != 0 && rev >= l {
		loaded = s.loading.CompareAndSwap(l, 0)
	}
	s.reported.Store(now.UnixNano())
	r.changed.notify()
	return s, loaded, nil
}

// Reporting returns the reporting subscribers connected now.
func (f *Fleet) Reporting() []*Subscriber {
	f.subs.mu.Lock()
	defer f.subs.mu.Unlock()
	return slices.Collect(maps.Values(f.subs.byID))
}

// Subscribers returns every subscriber connected now.
func (f *Fleet) Subscribers() []*Subscriber {
	f.subs.mu.Lock()
	defer f.subs.mu.Unlock()
	return slices.Collect(maps.Values(f.subs.all))
}

// Len is how many subscribers are connected now.
func (f *Fleet) Len() int {
	f.subs.mu.Lock()
	defer f.subs.mu.Unlock()
	return len(f.subs.all)
}
