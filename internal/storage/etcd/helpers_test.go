package etcd_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

var base = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func testBan(id, user string) storage.Ban {
	return storage.Ban{ID: id, TenantID: "t1", Kind: storage.SubjectUser, Value: user, Reason: "0", CreateTime: base}
}

func putBanEmit(b storage.Ban) func(storage.Tx) error {
	return func(tx storage.Tx) error {
		if err := tx.PutBan(b); err != nil {
			return err
		}
		return tx.Emit(storage.Event{Kind: storage.EventBanCreated, Time: b.CreateTime, Ban: &b})
	}
}

func mustUpdate(t testing.TB, s storage.Store, fn func(storage.Tx) error) int64 {
	t.Helper()
	rev, err := s.Update(t.Context(), fn)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	return rev
}

func getBan(t testing.TB, s storage.Store, id string) (storage.Ban, error) {
	t.Helper()
	var b storage.Ban
	err := s.View(t.Context(), func(tx storage.ReadTx) error {
		var err error
		b, err = tx.Ban(id)
		return err
	})
	return b, err
}

func waitCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// next returns the watcher's next change or fails the test.
func next(t testing.TB, w storage.Watcher) storage.Change {
	t.Helper()
	c, err := w.Next(waitCtx(t))
	if err != nil {
		t.Fatalf("Next after %d: %v", w.Revision(), err)
	}
	return c
}

// wantNothing checks that w has nothing to deliver right now.
func wantNothing(t testing.TB, w storage.Watcher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if c, err := w.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next: got change %d, error %v; want nothing", c.Revision, err)
	}
}
