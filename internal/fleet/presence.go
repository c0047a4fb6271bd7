package fleet

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

// Summary is what a replica publishes: its reporting mirrors and the
// revisions they have applied.
type Summary struct {
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
func summarize(set []*Subscriber) Summary {
	counts := map[int64]int64{}
	for _, sub := range set {
		counts[sub.Applied()]++
	}
	revs := slices.Sorted(maps.Keys(counts))
	out := Summary{Mirrors: len(set)}
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
func (s Summary) atLeast(rev int64) int {
	var n int64
	for _, p := range s.Applied {
		if p[0] >= rev {
			n += p[1]
		}
	}
	return int(min(n, int64(s.Mirrors)))
}

func (s Summary) equal(o Summary) bool {
	return s.Mirrors == o.Mirrors && slices.Equal(s.Applied, o.Applied)
}

// view is what this replica knows of the others: their last summaries by
// replica ID.
type view struct {
	mu     sync.Mutex
	others map[string]Summary
	// changed fires whenever the view changes, as registry.changed does
	// for local reports.
	changed broadcast
}

func (v *view) set(others map[string]Summary) {
	v.mu.Lock()
	v.others = others
	v.mu.Unlock()
	v.changed.notify()
}

// snapshot returns the other replicas' summaries (the map is never
// modified after set: it can be shared).
func (v *view) snapshot() map[string]Summary {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.others
}

// Others returns the other replicas' last summaries by replica ID (not to
// be modified), and the channel closed at their next change, taken before
// them.
func (f *Fleet) Others() (map[string]Summary, <-chan struct{}) {
	changed := f.view.changed.wait()
	return f.view.snapshot(), changed
}

// Join publishes this replica's summary through p and follows the
// others', until closing is closed or the store closes. It is called at
// most once, before the Fleet is used.
func (f *Fleet) Join(closing <-chan struct{}, p storage.Presence) {
	var b [8]byte
	rand.Read(b[:])
	f.replicaID = "replica_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-closing:
		case <-ctx.Done():
		}
		cancel()
	}()
	go func() {
		defer cancel() // the store closed: the publisher stops too
		f.follow(ctx, p)
	}()
	go f.publish(ctx, p)
}

// publish writes the summary when it changed, at most once per
// publishInterval, woken by the mirrors' reports and departures (never by
// a timer while nothing happens).
func (f *Fleet) publish(ctx context.Context, p storage.Presence) {
	var last Summary
	published := false
	var at time.Time
	for {
		changed := f.subs.changed.wait()
		sum := summarize(f.Reporting())
		if !published || !sum.equal(last) {
			if err := f.put(ctx, p, sum); err != nil {
				if ctx.Err() != nil || errors.Is(err, storage.ErrClosed) {
					break
				}
				f.cfg.Logger.Warn("publishing mirror progress to the other replicas failed; retrying", "err", err)
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
	_ = f.put(fctx, p, Summary{})
}

func (f *Fleet) put(ctx context.Context, p storage.Presence, sum Summary) error {
	v, err := json.Marshal(sum)
	if err != nil {
		return err
	}
	return p.PublishPresence(ctx, f.replicaID, v)
}

// follow keeps the view up to date with the other replicas' summaries.
func (f *Fleet) follow(ctx context.Context, p storage.Presence) {
	for ctx.Err() == nil {
		ch, err := p.WatchPresence(ctx)
		if err != nil {
			f.cfg.Logger.Warn("following the other replicas' mirror progress failed; retrying", "err", err)
			if !sleepCtx(ctx, time.Second) {
				return
			}
			continue
		}
		for m := range ch {
			others := make(map[string]Summary, len(m))
			for id, v := range m {
				if id == f.replicaID {
					continue
				}
				var sum Summary
				if err := json.Unmarshal(v, &sum); err != nil {
					f.cfg.Logger.Warn("ignoring an unreadable replica summary", "replica", id, "err", err)
					continue
				}
				others[id] = sum
			}
			f.view.set(others)
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
