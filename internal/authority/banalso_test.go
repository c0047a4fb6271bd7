package authority_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

// TestCreateBanAlso: the caller's records written by BanInput.Also commit
// in the ban's own Update (the Shared Signals receiver marks a SET with
// its ban in one commit), and an error from Also leaves no ban.
func TestCreateBanAlso(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			a := authority.New(open(t), authority.Config{Clock: c.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			ctx := context.Background()
			mark := storage.ReceivedSET{Transmitter: "stx_1", JTI: "j1", Event: "e", ReceiveTime: c.Now(), KeepUntil: c.Now().Add(time.Hour)}

			failure := errors.New("the caller's write failed")
			_, _, err := a.CreateBan(ctx, authority.System, authority.BanInput{TenantID: "t1", Kind: storage.SubjectUser, Value: "alice",
				Also: func(tx storage.Tx) error {
					if err := tx.PutReceivedSET(mark); err != nil {
						return err
					}
					return failure
				}})
			if !errors.Is(err, failure) {
				t.Fatalf("CreateBan = %v, want the Also's error", err)
			}
			banned, _, err := a.CheckBan(ctx, authority.CheckInput{TenantID: "t1", UserID: "alice"})
			if err != nil || banned {
				t.Fatalf("after a failed Also: banned=%v (%v), want no ban", banned, err)
			}
			if got := receivedSET(t, a, mark.Key()); got {
				t.Fatal("the Also's write committed without the ban")
			}

			before, err := a.Revision(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ban, _, err := a.CreateBan(ctx, authority.System, authority.BanInput{TenantID: "t1", Kind: storage.SubjectUser, Value: "alice",
				Also: func(tx storage.Tx) error { return tx.PutReceivedSET(mark) }})
			if err != nil {
				t.Fatal(err)
			}
			if !receivedSET(t, a, mark.Key()) {
				t.Fatal("the Also's write is missing")
			}
			// One change: the ban's, with the mark in it.
			evs := changesSince(t, a, before)
			if len(evs) != 1 || evs[0].Kind != storage.EventBanCreated || evs[0].Ban.ID != ban.ID {
				t.Fatalf("changes since the ban: %+v, want the ban's event alone", evs)
			}
		})
	}
}

func receivedSET(t *testing.T, a *authority.Authority, key string) bool {
	t.Helper()
	var found bool
	err := a.View(context.Background(), func(tx storage.ReadTx) error {
		_, err := tx.ReceivedSET(key)
		found = err == nil
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
