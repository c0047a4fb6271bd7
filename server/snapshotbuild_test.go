package server

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestSnapshotBuildEach: a subscriber iterating a snapshot being built
// gets each part as it is published, in order, waits for the next (never
// sees the end early), and gets the build's error after the parts
// published before it failed.
func TestSnapshotBuildEach(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang guard
	defer cancel()
	b := newSnapshotBuild()
	if err := b.begin(7); err != nil {
		t.Fatal(err)
	}
	msgs := []*sharedMsg{newEncodedMsg([]byte{1}, time.Time{}), newEncodedMsg([]byte{2}, time.Time{})}
	got := make(chan *sharedMsg)
	errc := make(chan error, 1)
	go func() {
		for m, err := range b.each(ctx) {
			if err != nil {
				errc <- err
				return
			}
			got <- m
		}
		errc <- nil
	}()
	failed := errors.New("store failed")
	for _, m := range msgs {
		b.publish(m)
		if g := <-got; g != m {
			t.Fatalf("got part %p, want %p", g, m)
		}
	}
	select {
	case <-got:
		t.Fatal("a part that was not published")
	case err := <-errc:
		t.Fatalf("the iteration ended (%v) before the build did", err)
	default: // still waiting, as it should
	}
	b.finish(failed)
	if err := <-errc; !errors.Is(err, failed) {
		t.Fatalf("iteration ended with %v, want the build's error", err)
	}
	// A late subscriber gets the same parts, then the error.
	var n int
	var last error
	for _, err := range b.each(ctx) {
		if err != nil {
			last = err
			break
		}
		n++
	}
	if n != len(msgs) || !errors.Is(last, failed) {
		t.Fatalf("late subscriber: %d parts, %v; want %d and the build's error", n, last, len(msgs))
	}
	// A read run again after parts went out cannot start over.
	if err := b.begin(7); !errors.Is(err, errSnapshotRestarted) {
		t.Fatalf("begin again: %v, want errSnapshotRestarted", err)
	}
}
