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

// TestWriterOneCommit: several writes through one Writer commit as one
// change, each read seeing the writes before it, and an error from any of
// them leaves none.
func TestWriterOneCommit(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			a := authority.New(open(t), authority.Config{Clock: c.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			ctx := context.Background()
			if err := a.EnsureSigningKey(ctx); err != nil {
				t.Fatal(err)
			}
			tok, err := a.CreateSession(ctx, authority.Actor{Name: "svc"}, authority.SessionInput{TenantID: "t1", UserID: "bob"})
			if err != nil {
				t.Fatal(err)
			}
			ban := func(user string) authority.BanInput {
				return authority.BanInput{TenantID: "t1", Kind: storage.SubjectUser, Value: user, Reason: "r"}
			}

			failure := errors.New("a later write failed")
			_, err = a.Write(ctx, func(w *authority.Writer) error {
				if _, _, err := w.CreateBan(authority.System, ban("alice")); err != nil {
					return err
				}
				return failure
			})
			if !errors.Is(err, failure) {
				t.Fatalf("Write = %v, want the later write's error", err)
			}
			if banned, _, err := a.CheckBan(ctx, authority.CheckInput{TenantID: "t1", UserID: "alice"}); err != nil || banned {
				t.Fatalf("after a failed Write: banned=%v (%v), want nothing committed", banned, err)
			}

			before, err := a.Revision(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var revoked int
			rev, err := a.Write(ctx, func(w *authority.Writer) error {
				alice, _, err := w.CreateBan(authority.System, ban("alice"))
				if err != nil {
					return err
				}
				bans, err := w.ActiveBans("t1", "alice")
				if err != nil || len(bans) != 1 || bans[0].ID != alice.ID {
					return errors.Join(err, errors.New("ActiveBans does not see the ban made before it"))
				}
				if _, err := w.LiftBan(authority.System, alice.ID, "lifted"); err != nil {
					return err
				}
				if bans, err := w.ActiveBans("t1", "alice"); err != nil || len(bans) != 0 {
					return errors.Join(err, errors.New("ActiveBans still sees the lifted ban"))
				}
				_, revoked, err = w.CreateBan(authority.System, ban("bob"))
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if revoked != 1 {
				t.Fatalf("bob's ban revoked %d sessions, want his one", revoked)
			}
			w, err := a.Watch(ctx, before)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			wctx, cancel := context.WithTimeout(ctx, time.Minute) // hang guard
			defer cancel()
			ch, err := w.Next(wctx)
			if err != nil {
				t.Fatal(err)
			}
			if ch.Revision != rev {
				t.Fatalf("the first change after the Write is at %d, want the Write's %d: more than one commit", ch.Revision, rev)
			}
			var kinds []storage.EventKind
			for _, ev := range ch.Events {
				kinds = append(kinds, ev.Kind)
			}
			want := []storage.EventKind{storage.EventBanCreated, storage.EventBanLifted, storage.EventBanCreated, storage.EventSessionRevoked}
			if len(kinds) != len(want) {
				t.Fatalf("events %v, want %v in one change", kinds, want)
			}
			for i := range want {
				if kinds[i] != want[i] {
					t.Fatalf("events %v, want %v in one change", kinds, want)
				}
			}
			if _, err := a.RefreshSession(ctx, authority.Actor{Name: "svc"}, tok.RefreshToken, ""); !errors.Is(err, authority.ErrSessionRevoked) && !errors.Is(err, authority.ErrBanned) {
				t.Fatalf("refresh of bob's session after his ban = %v, want refused", err)
			}
		})
	}
}
