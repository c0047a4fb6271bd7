package receiver_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/receiver"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
)

// TestSweep: Sweep deletes the ReceivedSETs past their KeepUntil and keeps
// the others.
func TestSweep(t *testing.T) {
	ctx := context.Background()
	store, err := bolt.Open(filepath.Join(t.TempDir(), "p.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	clock := authoritytest.NewClock(authoritytest.DefaultStart)
	auth := authority.New(store, authority.Config{Clock: clock.Now})
	r := receiver.New(auth, receiver.Config{})
	now := clock.Now()
	if _, err := auth.Update(ctx, func(tx storage.Tx) error {
		for jti, keep := range map[string]time.Duration{"a": time.Minute, "b": time.Hour} {
			if err := tx.PutReceivedSET(storage.ReceivedSET{Transmitter: "stx_1", JTI: jti, ReceiveTime: now, KeepUntil: now.Add(keep)}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("sweep now: %d %v", n, err)
	}
	clock.Advance(2 * time.Minute)
	if n, err := r.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep after 2m: %d %v", n, err)
	}
	err = auth.View(ctx, func(tx storage.ReadTx) error {
		if _, err := tx.ReceivedSET(storage.ReceivedSETKey("stx_1", "a")); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("a: %v, want not found", err)
		}
		_, err := tx.ReceivedSET(storage.ReceivedSETKey("stx_1", "b"))
		return err
	})
	if err != nil {
		t.Fatalf("b: %v", err)
	}
}
