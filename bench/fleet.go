package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// eventKey is what the enforcement loop recognises an applied event by:
// the user of a created ban, the session of a revocation, the ban of a
// lift. Child processes send it to the parent as text (procs.go), so it
// is two strings rather than the event.
type eventKey struct {
	kind string // "ban", "revoke", "lift" or "other"
	id   string
}

func keyOf(e *pb.Event) eventKey {
	switch {
	case e.GetBanCreated() != nil:
		return eventKey{"ban", e.GetBanCreated().GetSubject().GetUserId()}
	case e.GetSessionRevoked() != nil:
		return eventKey{"revoke", e.GetSessionRevoked().GetSessionId()}
	case e.GetBanLifted() != nil:
		return eventKey{"lift", e.GetBanLifted().GetBanId()}
	}
	return eventKey{kind: "other"}
}

// appliedFunc is told that mirror (its index in the fleet) applied the
// event with key k at the wall-clock time ns (unix nanoseconds: a child
// process's clock is the parent's, CLOCK_REALTIME of the same machine).
type appliedFunc func(mirror int, k eventKey, ns int64)

// fleet is n mirrors following the authority, in this process or in
// child processes; every mirror reports each event it applies to the
// appliedFunc given when the fleet started.
type fleet struct {
	mirrors int
	synced  time.Duration // start until every mirror had its first snapshot
	// stop stops the mirrors and returns the revision each ended at.
	stop func() ([]int64, error)
	// abort ends the mirrors after an error, at once (child processes are
	// killed).
	abort func()
}

// mirrorOptions are the options of every enforcement mirror, in this
// process or in a child.
func mirrorOptions(progress bool, onEvent func(*pb.Event)) client.MirrorOptions {
	return client.MirrorOptions{OnEvent: onEvent, Logger: slog.New(slog.DiscardHandler), CacheSize: 1024, DisableProgress: !progress}
}

// runMirrors dials and starts n mirrors of the authority at addr, each on
// its own connection, calling onEvent(i, e) for mirror i's events, and
// waits until all are synced (or parent ends). stop ends them and returns
// their revisions.
func runMirrors(parent context.Context, addr, key string, n int, progress bool, onEvent func(i int, e *pb.Event)) (stop func() []int64, err error) {
	ctx, cancel := context.WithCancel(parent)
	var wg sync.WaitGroup
	var clients []*client.Client
	mirrors := make([]*client.Mirror, 0, n)
	stop = func() []int64 {
		revs := make([]int64, len(mirrors))
		for i, m := range mirrors {
			revs[i] = m.Revision()
		}
		cancel()
		wg.Wait()
		for _, c := range clients {
			c.Close()
		}
		return revs
	}
	for i := range n {
		c, err := client.Dial(addr, client.WithAPIKey(key), client.WithInsecure())
		if err != nil {
			stop()
			return nil, err
		}
		clients = append(clients, c)
		m := client.NewMirror(c, mirrorOptions(progress, func(e *pb.Event) { onEvent(i, e) }))
		mirrors = append(mirrors, m)
		wg.Add(1)
		go func() { defer wg.Done(); m.Run(ctx) }()
	}
	sctx, scancel := context.WithTimeout(ctx, 2*time.Minute)
	defer scancel()
	for _, m := range mirrors {
		if err := m.WaitSynced(sctx); err != nil {
			stop()
			return nil, fmt.Errorf("mirror sync: %w", err)
		}
	}
	return stop, nil
}

// startInProcess runs n mirrors in this process; their OnEvent hooks
// stamp the time themselves.
func startInProcess(a *authorityEnv, n int, progress bool, applied appliedFunc) (*fleet, error) {
	started := time.Now()
	stop, err := runMirrors(context.Background(), a.addr, a.key, n, progress, func(i int, e *pb.Event) {
		ns := time.Now().UnixNano()
		applied(i, keyOf(e), ns)
	})
	if err != nil {
		return nil, err
	}
	return &fleet{mirrors: n, synced: time.Since(started), stop: func() ([]int64, error) { return stop(), nil }, abort: func() { stop() }}, nil
}

// target is the change the latency loop waits for: every mirror reports
// the time it applied it.
type target struct {
	key       eventKey
	seen      []atomic.Bool // by mirror: a second report of one mirror does not count
	remaining atomic.Int64
	last      atomic.Int64 // unix ns of the latest mirror to apply it
	done      chan struct{}
}

func newTarget(key eventKey, mirrors int) *target {
	t := &target{key: key, seen: make([]atomic.Bool, mirrors), done: make(chan struct{})}
	t.remaining.Store(int64(mirrors))
	return t
}

// applied records mirror's application of the target at ns.
func (t *target) applied(mirror int, ns int64) {
	if mirror < 0 || mirror >= len(t.seen) || t.seen[mirror].Swap(true) {
		return
	}
	for { // mirrors race: keep the latest time
		old := t.last.Load()
		if ns <= old || t.last.CompareAndSwap(old, ns) {
			break
		}
	}
	if t.remaining.Add(-1) == 0 {
		close(t.done)
	}
}
