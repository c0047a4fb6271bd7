package server

import (
	"fmt"
	"testing"
	"time"
)

// TestSnapshotBackoff: the window after n unacknowledged snapshots, the
// reset by an acknowledgement, and the expiry that bounds the map (times
// injected).
func TestSnapshotBackoff(t *testing.T) {
	var b snapshotBackoff
	t0 := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	const k = "key\x00host-1"

	if d, _ := b.refuse(k, t0); d != 0 {
		t.Fatalf("refused before any snapshot: %v", d)
	}
	b.sent(k, t0)
	if d, _ := b.refuse(k, t0); d != 0 {
		t.Fatalf("the first retry refused: %v", d)
	}
	b.sent(k, t0)
	if d, n := b.refuse(k, t0.Add(300*time.Millisecond)); d != 700*time.Millisecond || n != 2 {
		t.Fatalf("after 2: refused for %v (%d), want 700ms (2)", d, n)
	}
	if d, _ := b.refuse(k, t0.Add(time.Second)); d != 0 {
		t.Fatalf("refused after the window: %v", d)
	}
	for i, want := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute} {
		at := t0.Add(time.Duration(i+1) * time.Hour / 100) // within the expiry
		b.sent(k, at)
		if d, n := b.refuse(k, at); d != want || n != i+3 {
			t.Fatalf("after %d: refused for %v, want %v", n, d, want)
		}
	}
	if d, _ := b.refuse("", t0); d != 0 {
		t.Fatal("an identity-less subscriber refused")
	}

	b.acked(k)
	if d, n := b.refuse(k, t0); d != 0 || n != 0 {
		t.Fatalf("refused after an acknowledgement: %v (%d)", d, n)
	}

	// Entries expire: the map does not grow with identities long gone.
	t1 := t0.Add(time.Hour)
	for i := range 1000 {
		b.sent(fmt.Sprint("gone-", i), t1)
	}
	b.sent("recent", t1.Add(snapshotBackoffMax+2*time.Second))
	if got := b.len(); got != 1 {
		t.Fatalf("%d entries after the expiry, want 1", got)
	}
}

// len is how many keys b remembers.
func (b *snapshotBackoff) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}
