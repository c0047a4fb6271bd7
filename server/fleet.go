package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// Replicas over one shared store (storage.Presence, etcd) publish how far
// their reporting mirrors have got, so that a write's wait on one replica
// also counts the mirrors connected to the others. Each replica publishes
// a summary under a random ID and follows everyone else's into a view.
// With a store of one replica (bbolt) none of this runs.

// A replica publishes its mirrors' progress publishSettle after the change
// that woke it, and at most once per publishInterval. A ban makes every
// mirror report at once: the settle gathers such a burst into one write
// (published at the first report, the summary would be partial and the
// complete one would wait a whole interval), and the interval bounds the
// etcd writes of a replica under sustained change to 100 a second. A
// waiter on another replica hears of a report publishSettle to
// publishInterval after it, plus an etcd write and a watch.
const (
	publishSettle   = 2 * time.Millisecond
	publishInterval = 10 * time.Millisecond
)

// maxSummaryLevels bounds the (revision, count) pairs of a summary, to
// stay far below storage.MaxPresenceValue.
const maxSummaryLevels = 64

// summary is what a replica publishes: its reporting mirrors and the
// revisions they have applied.
type summary struct {
	// Mirrors is how many reporting mirrors are connected.
	Mirrors int `json:"n"`
	// Applied holds [revision, mirrors] pairs, by ascending revision. When
	// there are more distinct revisions than maxSummaryLevels, the lowest
	// are merged into the lowest of them: a mirror may be shown behind
	// where it is, never ahead, so atLeast never counts one that has not
	// applied a revision.
	Applied [][2]int64 `json:"a,omitempty"`
}

// summarize describes the reporting subscribers in set.
func summarize(set []*subscriber) summary {
	counts := map[int64]int64{}
	for _, sub := range set {
		counts[sub.applied.Load()]++
	}
	revs := slices.Sorted(maps.Keys(counts))
	out := summary{Mirrors: len(set)}
	if extra := len(revs) - maxSummaryLevels; extra > 0 {
		lowest := [2]int64{revs[0], 0}
		for _, r := range revs[:extra+1] {
			lowest[1] += counts[r]
		}
		out.Applied = append(out.Applied, lowest)
		revs = revs[extra+1:]
	}
	for _, r := range revs {
		out.Applied = append(out.Applied, [2]int64{r, counts[r]})
	}
	return out
}

// atLeast is how many of the replica's mirrors have applied rev.
func (s summary) atLeast(rev int64) int {
	var n int64
	for _, p := range s.Applied {
		if p[0] >= rev {
			n += p[1]
		}
	}
	return int(min(n, int64(s.Mirrors)))
}

func (s summary) equal(o summary) bool {
	return s.Mirrors == o.Mirrors && slices.Equal(s.Applied, o.Applied)
}

// fleetView is what this replica knows of the others: their last
// summaries by replica ID.
type fleetView struct {
	mu     sync.Mutex
	others map[string]summary
	// changed is closed and replaced whenever the view changes, as
	// subscribers.changed is for local reports.
	changed chan struct{}
}

func (v *fleetView) set(others map[string]summary) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.others = others
	if v.changed != nil {
		close(v.changed)
		v.changed = nil
	}
}

// changedCh returns the channel closed at the next change. Take it before
// reading the view, so that no change is missed.
func (v *fleetView) changedCh() <-chan struct{} {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.changed == nil {
		v.changed = make(chan struct{})
	}
	return v.changed
}

// snapshot returns the other replicas' summaries (the map is never
// modified after set: it can be shared).
func (v *fleetView) snapshot() map[string]summary {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.others
}

// startPresence publishes this replica's summary and follows the others',
// until Shutdown or until the store closes.
func (s *Server) startPresence(p storage.Presence) {
	var b [8]byte
	rand.Read(b[:])
	s.replicaID = "replica_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-s.closing:
		case <-ctx.Done():
		}
		cancel()
	}()
	go func() {
		defer cancel() // the store closed: the publisher stops too
		s.followPresence(ctx, p)
	}()
	go s.publishPresence(ctx, p)
}

// publishPresence writes the summary when it changed, at most once per
// publishInterval, woken by the mirrors' reports and departures (never by
// a timer while nothing happens).
func (s *Server) publishPresence(ctx context.Context, p storage.Presence) {
	var last summary
	published := false
	var at time.Time
	for {
		changed := s.subs.changedCh()
		sum := summarize(s.subs.reportingSet())
		if !published || !sum.equal(last) {
			if err := s.putSummary(ctx, p, sum); err != nil {
				if ctx.Err() != nil || errors.Is(err, storage.ErrClosed) {
					break
				}
				s.log.Warn("publishing mirror progress to the other replicas failed; retrying", "err", err)
				if !sleepCtx(ctx, time.Second) {
					break
				}
				continue
			}
			last, published, at = sum, true, time.Now()
		}
		select {
		case <-changed:
		case <-ctx.Done():
		}
		// The rest of the burst, and the spacing of writes.
		if ctx.Err() != nil || !sleepCtx(ctx, max(publishSettle, publishInterval-time.Since(at))) {
			break
		}
	}
	// Shutdown ended every Watch stream: say so, so that the other replicas
	// stop waiting for mirrors that are reconnecting elsewhere. The store
	// may be closing too; then its lease removes the value anyway.
	fctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.putSummary(fctx, p, summary{})
}

func (s *Server) putSummary(ctx context.Context, p storage.Presence, sum summary) error {
	v, err := json.Marshal(sum)
	if err != nil {
		return err
	}
	return p.PublishPresence(ctx, s.replicaID, v)
}

// followPresence keeps s.fleet up to date with the other replicas'
// summaries.
func (s *Server) followPresence(ctx context.Context, p storage.Presence) {
	for ctx.Err() == nil {
		ch, err := p.WatchPresence(ctx)
		if err != nil {
			s.log.Warn("following the other replicas' mirror progress failed; retrying", "err", err)
			if !sleepCtx(ctx, time.Second) {
				return
			}
			continue
		}
		for m := range ch {
			others := make(map[string]summary, len(m))
			for id, v := range m {
				if id == s.replicaID {
					continue
				}
				var sum summary
				if err := json.Unmarshal(v, &sum); err != nil {
					s.log.Warn("ignoring an unreadable replica summary", "replica", id, "err", err)
					continue
				}
				others[id] = sum
			}
			s.fleet.set(others)
		}
		// The channel closes with ctx or with the store: either way, done.
		return
	}
}

// sleepCtx waits d (nothing when d <= 0) and reports whether ctx is still
// alive.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
