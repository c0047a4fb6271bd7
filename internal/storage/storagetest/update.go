package storagetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

func testUpdate(t *testing.T, newStore func(*testing.T) storage.Store) {
	t.Run("ErrorWritesNothing", func(t *testing.T) {
		s := newStore(t)
		banA := newBan("ban_a", "t1", storage.SubjectUser, "alice")
		rev1 := update(t, s, func(tx storage.Tx) error {
			if err := tx.PutBan(banA); err != nil {
				return err
			}
			return tx.Emit(banEvent(storage.EventBanCreated, banA))
		})

		errBoom := errors.New("boom")
		banB := newBan("ban_b", "t1", storage.SubjectUser, "bob")
		_, err := s.Update(t.Context(), func(tx storage.Tx) error {
			if err := tx.PutBan(banB); err != nil {
				return err
			}
			if err := tx.PutSession(newSession("ses_b", "t1", "bob", "")); err != nil {
				return err
			}
			if err := tx.AppendAudit(storage.AuditRecord{ID: "aud_b", Time: at(0), Action: "ban.create"}); err != nil {
				return err
			}
			if err := tx.Emit(banEvent(storage.EventBanCreated, banB)); err != nil {
				return err
			}
			return errBoom
		})
		if err != errBoom { // the contract says "unchanged", so compare identity
			t.Fatalf("Update returned %v, want the function's error unchanged", err)
		}

		// A wrapped sentinel from inside the transaction stays visible.
		_, err = s.Update(t.Context(), func(tx storage.Tx) error {
			if _, err := tx.Ban("ban_missing"); err != nil {
				return fmt.Errorf("lift: %w", err)
			}
			return nil
		})
		if !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Update returned %v, want an error wrapping ErrNotFound", err)
		}

		view(t, s, func(tx storage.ReadTx) error {
			_, err := tx.Ban("ban_b")
			wantNotFound(t, "ban written by a failed Update", err)
			_, err = tx.Session("ses_b")
			wantNotFound(t, "session written by a failed Update", err)
			audit, err := collect(tx.AuditRecords(storage.AuditQuery{}))
			if err != nil || len(audit) != 0 {
				t.Errorf("audit after a failed Update: %v, %v; want none", audit, err)
			}
			if tx.Revision() != rev1 {
				t.Errorf("Revision after a failed Update: %d, want %d", tx.Revision(), rev1)
			}
			return nil
		})

		banC := newBan("ban_c", "t1", storage.SubjectUser, "carol")
		rev2 := update(t, s, func(tx storage.Tx) error {
			return tx.Emit(banEvent(storage.EventBanCreated, banC))
		})
		if rev2 <= rev1 {
			t.Fatalf("revision after a failed Update: %d, want > %d", rev2, rev1)
		}
		w := watch(t, s, rev1)
		got := next(t, w)
		same(t, "change after a failed Update", got, storage.Change{Revision: rev2, Events: []storage.Event{banEvent(storage.EventBanCreated, banC)}}, normChange)
	})

	// An Update larger than the backend commits at once (300 revocations:
	// more keys than etcd's default --max-txn-ops) either commits whole or
	// fails with ErrTxnTooLarge and writes nothing, no change included.
	t.Run("TooLarge", func(t *testing.T) {
		s := newStore(t)
		const n = 300
		sessions := make([]storage.Session, n)
		for i := range sessions {
			sessions[i] = newSession(fmt.Sprintf("ses_%03d", i), "t1", "u", "")
		}
		for i := 0; i < n; i += 25 {
			putSessions(t, s, sessions[i:i+25]...)
		}
		before := currentRevision(t, s)
		rev, err := s.Update(t.Context(), func(tx storage.Tx) error {
			for _, ses := range sessions {
				ses.RevokeTime, ses.RevokedBy, ses.RevokeReason = at(time.Hour), "moderator", "ban"
				if err := tx.PutSession(ses); err != nil {
					return err
				}
				if err := tx.Emit(sessionEvent(ses)); err != nil {
					return err
				}
			}
			return nil
		})
		revoked := 0
		for _, ses := range sessionListing.get(t, s, storage.SessionQuery{TenantID: "t1", UserID: "u"}) {
			if ses.Revoked() {
				revoked++
			}
		}
		switch {
		case err == nil:
			if revoked != n || rev <= before {
				t.Fatalf("Update committed: %d of %d sessions revoked, revision %d after %d", revoked, n, rev, before)
			}
			w := watch(t, s, before)
			if c := next(t, w); c.Revision != rev || len(c.Events) != n {
				t.Fatalf("change of the large Update: revision %d with %d events, want %d with %d", c.Revision, len(c.Events), rev, n)
			}
		case errors.Is(err, storage.ErrTxnTooLarge):
			if revoked != 0 {
				t.Fatalf("Update failed with %v but revoked %d sessions", err, revoked)
			}
			if got := currentRevision(t, s); got != before {
				t.Fatalf("revision after a too large Update: %d, want %d", got, before)
			}
		default:
			t.Fatalf("Update of %d revocations: %v, want success or ErrTxnTooLarge", n, err)
		}
	})

	t.Run("Revisions", func(t *testing.T) {
		s := newStore(t)
		start := currentRevision(t, s)
		prev := start
		var want []storage.Change
		for i := range 6 {
			var events []storage.Event
			for j := range i%3 + 1 {
				events = append(events, banEvent(storage.EventBanCreated, newBan(fmt.Sprintf("ban_%d_%d", i, j), "t1", storage.SubjectUser, "u")))
			}
			rev := update(t, s, func(tx storage.Tx) error { return emitAll(tx, events...) })
			if rev <= prev {
				t.Fatalf("Update %d: revision %d, want > %d", i, rev, prev)
			}
			if got := currentRevision(t, s); got != rev {
				t.Errorf("View after Update %d: Revision %d, want %d", i, got, rev)
			}
			prev = rev
			want = append(want, storage.Change{Revision: rev, Events: events})
		}
		// Each Update is one change: all its events under its revision.
		w := watch(t, s, start)
		for _, c := range want {
			same(t, fmt.Sprintf("change %d", c.Revision), next(t, w), c, normChange)
		}
	})

	t.Run("NoEvents", func(t *testing.T) {
		s := newStore(t)
		rev1 := update(t, s, func(tx storage.Tx) error {
			return tx.Emit(banEvent(storage.EventBanCreated, newBan("ban_1", "t1", storage.SubjectUser, "u")))
		})
		rev := update(t, s, func(tx storage.Tx) error {
			return tx.PutSession(newSession("ses_1", "t1", "u", ""))
		})
		if rev < rev1 {
			t.Errorf("Update without events returned %d, before the last change %d", rev, rev1)
		}
		rev2 := update(t, s, func(tx storage.Tx) error {
			return tx.Emit(banEvent(storage.EventBanCreated, newBan("ban_2", "t1", storage.SubjectUser, "u")))
		})
		if rev2 <= rev {
			t.Errorf("change after an Update without events: revision %d, want > %d", rev2, rev)
		}
		// The Update without events is no change: the watcher sees the
		// next one directly.
		w := watch(t, s, rev1)
		if c := next(t, w); c.Revision != rev2 {
			t.Errorf("after %d the watcher got revision %d, want %d", rev1, c.Revision, rev2)
		}
	})

	t.Run("ReadOwnWrites", func(t *testing.T) {
		s := newStore(t)
		ban := newBan("ban_1", "t1", storage.SubjectUser, "alice")
		update(t, s, func(tx storage.Tx) error {
			if err := tx.PutBan(ban); err != nil {
				return err
			}
			got, err := tx.Ban(ban.ID)
			if err != nil {
				return fmt.Errorf("reading a ban written in the same Update: %w", err)
			}
			same(t, "ban read in its own Update", got, ban, normBan)
			bans, err := collect(tx.Bans(storage.BanQuery{TenantID: "t1", Kind: storage.SubjectUser, Value: "alice"}))
			if err != nil {
				return err
			}
			if len(bans) != 1 {
				t.Errorf("query in the Update that wrote the ban: %d bans, want 1", len(bans))
			}
			return nil
		})
	})

	t.Run("ViewRevision", func(t *testing.T) {
		s := newStore(t)
		start := currentRevision(t, s)
		if _, err := s.Watch(t.Context(), start); err != nil {
			t.Errorf("Watch(the revision View reports): %v", err)
		}
		rev := update(t, s, func(tx storage.Tx) error {
			return tx.Emit(sessionEvent(revokedSession("ses_1", at(time.Hour))))
		})
		view(t, s, func(tx storage.ReadTx) error {
			if tx.Revision() != rev {
				t.Errorf("View after Update: Revision %d, want %d", tx.Revision(), rev)
			}
			return nil
		})
	})
}

func revokedSession(id string, when time.Time) storage.Session {
	s := newSession(id, "t1", "u1", "d1")
	s.RevokeTime = when
	s.RevokeReason = "banned"
	s.RevokedBy = "moderator"
	return s
}
