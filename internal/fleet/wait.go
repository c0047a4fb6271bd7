package fleet

import (
	"context"
	"maps"
	"slices"
	"time"
)

// Enforcement is how far the mirrors got with a write's revision when its
// wait ended.
type Enforcement struct {
	Revision int64
	Elapsed  time.Duration
	// Confirmed and Total count this replica's reporting mirrors known at
	// the write; Replicas the other replicas'.
	Confirmed, Total int
	// Laggards had not applied the revision; Disconnected left before they
	// did.
	Laggards, Disconnected []*Subscriber
	Replicas               []ReplicaProgress
}

// ReplicaProgress is how far another replica's mirrors got, by its last
// summary.
type ReplicaProgress struct {
	ReplicaID        string
	Confirmed, Total int
	// Gone: the replica left during the wait (its presence expired); it is
	// reported with its last summary.
	Gone bool
}

// Wait waits (up to wait, or until ctx ends) until every reporting
// subscriber connected now has applied rev, and every other replica known
// now has published that all its mirrors have, and says how far it got.
// It wakes on local reports and on the other replicas' summaries, never
// on a timer. It never fails: the write is durable whatever the mirrors
// do. A zero wait still reports who has confirmed already.
func (f *Fleet) Wait(ctx context.Context, rev int64, wait time.Duration) Enforcement {
	start := time.Now()
	set := f.Reporting()
	// The other replicas at the time of the write; one that appears later
	// serves mirrors that connected after the write, which get it in their
	// snapshot. last holds each one's latest summary: what a replica that
	// goes away during the wait is reported with.
	last := maps.Clone(f.view.snapshot())
	replicas := slices.Sorted(maps.Keys(last))
	timer := time.NewTimer(wait)
	defer timer.Stop()
	out := Enforcement{Revision: rev, Total: len(set)}
	for {
		changed, viewChanged := f.subs.changed.wait(), f.view.changed.wait()
		out.Confirmed, out.Laggards, out.Disconnected = 0, out.Laggards[:0], out.Disconnected[:0]
		for _, sub := range set {
			switch {
			case sub.Applied() >= rev:
				out.Confirmed++
			case isClosed(sub.gone):
				out.Disconnected = append(out.Disconnected, sub)
			default:
				out.Laggards = append(out.Laggards, sub)
			}
		}
		var remoteDone bool
		out.Replicas, remoteDone = remoteProgress(replicas, last, f.view.snapshot(), rev)
		if len(out.Laggards) == 0 && remoteDone {
			break
		}
		select {
		case <-changed:
			continue
		case <-viewChanged:
			continue
		case <-timer.C:
		case <-ctx.Done():
		}
		break
	}
	out.Elapsed = time.Since(start)
	return out
}

// remoteProgress is how far the mirrors of the replicas known at the write
// (ids) have got by the summaries in now, and whether all of them are
// done: every mirror a replica has now applied rev (mirrors that left it
// are not waited for), or the replica is gone (its presence expired), when
// it is reported with its summary in last. It records now's summaries of
// ids in last.
func remoteProgress(ids []string, last, now map[string]Summary, rev int64) ([]ReplicaProgress, bool) {
	if len(ids) == 0 {
		return nil, true
	}
	out := make([]ReplicaProgress, 0, len(ids))
	done := true
	for _, id := range ids {
		sum, ok := now[id]
		if ok {
			last[id] = sum
		} else {
			sum = last[id]
		}
		p := ReplicaProgress{ReplicaID: id, Confirmed: sum.atLeast(rev), Total: sum.Mirrors, Gone: !ok}
		if ok && p.Confirmed < p.Total {
			done = false
		}
		out = append(out, p)
	}
	return out, done
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
