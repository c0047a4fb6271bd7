package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/client"
)

// TestStartMirror: StartMirror returns a synced mirror, and its stop ends
// Run (the mirror goes stale: no word from the authority any more).
func TestStartMirror(t *testing.T) {
	a := authoritytest.Start(t, authoritytest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // hang guard
	defer cancel()
	m, stop, err := client.StartMirror(ctx, a.Dial(), client.MirrorOptions{Clock: a.Clock().Now})
	if err != nil {
		t.Fatal(err)
	}
	if m.Revision() == 0 || m.StoreID() != a.StoreID() {
		t.Fatalf("revision %d, store %q: not synced", m.Revision(), m.StoreID())
	}
	stop()
	stop() // idempotent
}

// TestStartMirrorRefusedKey: a key the authority refuses fails StartMirror
// at once with the client sentinel, instead of waiting for ctx.
func TestStartMirrorRefusedKey(t *testing.T) {
	a := authoritytest.Start(t, authoritytest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // hang guard only
	defer cancel()
	_, _, err := client.StartMirror(ctx, a.Dial(client.WithAPIKey("pk_not_a_key")), client.MirrorOptions{})
	if !errors.Is(err, client.ErrAPIKeyInvalid) {
		t.Fatalf("StartMirror: %v, want ErrAPIKeyInvalid", err)
	}
	if ctx.Err() != nil {
		t.Fatal("StartMirror waited for the hang guard")
	}
}

// TestStartMirrorContextEnds: a ctx that ends before the first snapshot
// fails StartMirror with its error.
func TestStartMirrorContextEnds(t *testing.T) {
	a := authoritytest.Start(t, authoritytest.Options{})
	a.Stop() // nothing to sync from
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := client.StartMirror(ctx, a.Dial(), client.MirrorOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("StartMirror: %v, want context.Canceled", err)
	}
}
