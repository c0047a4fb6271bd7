package server

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/internal/fleet"
	"github.com/portcullis-dev/portcullis/rpcerr"
)

// A mirror that cannot acknowledge its snapshot (it loses its stream while
// loading, or something on its side breaks before it reports) reconnects
// and needs another full snapshot. Without a limit the authority would
// send one in a loop as fast as the mirror reconnects. snapshotBackoff
// counts, per reporting identity (API key and MirrorIdentity.instance_id),
// the consecutive snapshots sent and never acknowledged (no report of their
// revision); the next Watch of that identity that needs a snapshot within
// a back-off window is refused with SNAPSHOT_TOO_SOON and a RetryInfo.
// The first retry is free (a single broken stream is ordinary); after
// that the window doubles from snapshotBackoffBase up to
// snapshotBackoffMax. An acknowledged snapshot resets the count.
// Subscribers without an identity (grpcurl, `portcullis watch`) report
// nothing, so nothing can be acknowledged: they are not subject to it (nor
// to the progress timeout).
//
// Times are wall-clock (time.Now), like the stream's other timers (send and
// progress timeouts); the functions take now, for tests.
const (
	snapshotBackoffBase = time.Second
	snapshotBackoffMax  = time.Minute
	// snapshotBackoffEntries bounds the map whatever the expiry: beyond it,
	// new identities are not tracked (not limited) until entries expire.
	snapshotBackoffEntries = 100_000
)

var errSnapshotTooSoon = errors.New("snapshot refused: this mirror did not acknowledge the previous ones")

// snapshotTooSoonError is errSnapshotTooSoon with the delay of its
// RetryInfo.
type snapshotTooSoonError struct {
	unacked int
	delay   time.Duration
}

func (e *snapshotTooSoonError) Error() string {
	return fmt.Sprintf("%v (%d sent without a progress report of their revision); retry in %s", errSnapshotTooSoon, e.unacked, e.delay.Round(time.Millisecond))
}

func (e *snapshotTooSoonError) Unwrap() error { return errSnapshotTooSoon }

func (e *snapshotTooSoonError) statusDetails() (map[string]string, time.Duration) {
	return map[string]string{rpcerr.MetaUnackedSnap: strconv.Itoa(e.unacked)}, e.delay
}

type unackedSnapshots struct {
	n    int       // consecutive snapshots sent and not acknowledged
	last time.Time // when the last one began
}

// window is how long after the last of n unacknowledged snapshots the
// next one is refused.
func backoffWindow(n int) time.Duration {
	if n < 2 {
		return 0
	}
	d := snapshotBackoffBase
	for i := 2; i < n && d < snapshotBackoffMax; i++ {
		d *= 2
	}
	return min(d, snapshotBackoffMax)
}

type snapshotBackoff struct {
	mu        sync.Mutex
	m         map[string]*unackedSnapshots
	lastSweep time.Time
}

// backoffKey is the identity a subscriber's snapshots are counted under;
// "" (not counted) for a subscriber without an identity.
func backoffKey(sub *fleet.Subscriber) string {
	if !sub.Reporting() {
		return ""
	}
	return sub.KeyID + "\x00" + sub.Identity.InstanceID
}

// refuse returns how long key must still wait before it gets another
// snapshot (0: it may have one now) and how many it left unacknowledged.
func (b *snapshotBackoff) refuse(key string, now time.Time) (time.Duration, int) {
	if key == "" {
		return 0, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.m[key]
	if e == nil {
		return 0, 0
	}
	if d := e.last.Add(backoffWindow(e.n)).Sub(now); d > 0 {
		return d, e.n
	}
	return 0, e.n
}

// sent records that key is being sent a snapshot.
func (b *snapshotBackoff) sent(key string, now time.Time) {
	if key == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweepLocked(now)
	e := b.m[key]
	if e == nil {
		if len(b.m) >= snapshotBackoffEntries {
			return
		}
		if b.m == nil {
			b.m = map[string]*unackedSnapshots{}
		}
		e = &unackedSnapshots{}
		b.m[key] = e
	}
	e.n++
	e.last = now
}

// acked records that key acknowledged a snapshot: it starts over.
func (b *snapshotBackoff) acked(key string) {
	if key == "" {
		return
	}
	b.mu.Lock()
	delete(b.m, key)
	b.mu.Unlock()
}

// sweepLocked forgets, at most once per snapshotBackoffBase, the entries
// whose window ended over snapshotBackoffMax ago: an identity quiet that
// long starts over.
func (b *snapshotBackoff) sweepLocked(now time.Time) {
	if now.Sub(b.lastSweep) < snapshotBackoffBase {
		return
	}
	b.lastSweep = now
	for k, e := range b.m {
		if now.Sub(e.last) > backoffWindow(e.n)+snapshotBackoffMax {
			delete(b.m, k)
		}
	}
}
