package storagetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// auditFixtures: aud_00 .. aud_11, one minute apart, cycling through
// tenants, actors, actions and subjects so that every filter splits them
// differently.
func auditFixtures() []storage.AuditRecord {
	tenants := []string{"t1", "t2", "t10"}
	actors := []string{"alice-key", "bob-key"}
	actions := []string{"ban.create", "ban.lift", "session.revoke", "key.rotate"}
	subjects := []string{"user:alice", "ip:203.0.113.0/24", "device:d1", "user:bob", "session:ses_01"}
	channels := []string{"grpc", "console", "grpc", ""}
	var out []storage.AuditRecord
	for i := range 12 {
		rec := storage.AuditRecord{
			ID:        fmt.Sprintf("aud_%02d", i),
			Time:      at(time.Duration(i) * time.Minute),
			Action:    actions[i%len(actions)],
			Actor:     actors[i%len(actors)],
			ActorAddr: "192.0.2.9:4711",
			Channel:   channels[i%len(channels)],
			TenantID:  tenants[i%len(tenants)],
			Subject:   subjects[i%len(subjects)],
			TargetID:  fmt.Sprintf("ban_%02d", i),
			Reason:    "reason " + fmt.Sprint(i),
			Policy:    "tos-4.2",
		}
		if i%2 == 0 {
			rec.Details = map[string]string{"revoked_sessions": fmt.Sprint(i)}
		}
		out = append(out, rec)
	}
	return out
}

var auditQueries = []storage.AuditQuery{
	{},
	{TenantID: "t1"},
	{TenantID: "t10"},
	{Subject: "user:alice"},
	{Actor: "bob-key"},
	{Action: "ban.create"},
	{Action: "session.revoke", Actor: "alice-key"},
	{TenantID: "t2", Actor: "bob-key", Action: "ban.lift"},
	{From: at(3 * time.Minute)},
	{To: at(3 * time.Minute)},
	{From: at(3 * time.Minute), To: at(7 * time.Minute)},
	{From: at(3*time.Minute + time.Nanosecond), To: at(7*time.Minute + time.Nanosecond)},
	{From: at(5 * time.Minute), To: at(5 * time.Minute)},
	{TenantID: "t1", From: at(2 * time.Minute), To: at(10 * time.Minute)},
	{TenantID: "t3"},
	{From: at(time.Hour)},
	// Through the index by subject or by actor, with the other filters
	// applied on top, in the same ID order.
	{Subject: "user:alice", From: at(2 * time.Minute), To: at(11 * time.Minute)},
	{Subject: "user:bob", Actor: "alice-key"},
	{Subject: "user:alice", Action: "ban.lift", TenantID: "t1"},
	{Subject: "device:d1", TenantID: "t10"},
	{Actor: "alice-key", TenantID: "t1", From: at(time.Minute)},
	{Actor: "bob-key", To: at(6 * time.Minute)},
	// A prefix of an indexed value matches nothing.
	{Subject: "user:al"},
	{Subject: "user"},
	{Actor: "bob"},
	{Channel: "console"},
	{Channel: "grpc", Subject: "user:alice"},
	{Channel: "grpc", Actor: "bob-key", From: at(4 * time.Minute)},
}

func matchAudit(q storage.AuditQuery, a storage.AuditRecord) bool {
	return (q.TenantID == "" || a.TenantID == q.TenantID) &&
		(q.Subject == "" || a.Subject == q.Subject) &&
		(q.Actor == "" || a.Actor == q.Actor) &&
		(q.Action == "" || a.Action == q.Action) &&
		(q.Channel == "" || a.Channel == q.Channel) &&
		(q.From.IsZero() || !a.Time.Before(q.From)) &&
		(q.To.IsZero() || a.Time.Before(q.To))
}

func testAudit(t *testing.T, newStore func(*testing.T) storage.Store) {
	// Appended in two Updates and out of order within each.
	setup := func(t *testing.T) (storage.Store, []storage.AuditRecord) {
		s := newStore(t)
		all := auditFixtures()
		for _, part := range [][]storage.AuditRecord{all[6:], all[:6]} {
			update(t, s, func(tx storage.Tx) error {
				for i := len(part) - 1; i >= 0; i-- {
					if err := tx.AppendAudit(part[i]); err != nil {
						return err
					}
				}
				return nil
			})
		}
		return s, all
	}

	t.Run("Filters", func(t *testing.T) {
		s, all := setup(t)
		auditListing.check(t, s, all, auditQueries, []string{"", "aud_00", "aud_04", "aud_045", "aud_11", "zzz"})
	})

	t.Run("Paging", func(t *testing.T) {
		s, all := setup(t)
		auditListing.checkPages(t, s, all, auditQueries, []int{2})
	})

	t.Run("KeyFieldWithNUL", func(t *testing.T) {
		// Subject and actor go into index keys: a NUL byte would let one
		// run into another's entries.
		s, all := setup(t)
		for _, r := range []storage.AuditRecord{
			{ID: "aud_98", Time: at(time.Hour), Subject: "user:a\x00b"},
			{ID: "aud_99", Time: at(time.Hour), Actor: "key\x00"},
		} {
			_, err := s.Update(t.Context(), func(tx storage.Tx) error { return tx.AppendAudit(r) })
			if !errors.Is(err, storage.ErrInvalidRecord) {
				t.Errorf("AppendAudit(%+v): %v, want ErrInvalidRecord", r, err)
			}
		}
		sameList(t, "audit trail after refused appends", auditListing.get(t, s, storage.AuditQuery{}), all, normAudit, auditID)
	})

	t.Run("DuplicateID", func(t *testing.T) {
		s, all := setup(t)
		dup := all[3]
		dup.Reason = "overwritten?"
		extra := storage.AuditRecord{ID: "aud_99", Time: at(time.Hour), Action: "ban.create"}
		_, err := s.Update(t.Context(), func(tx storage.Tx) error {
			if err := tx.AppendAudit(extra); err != nil {
				return err
			}
			return tx.AppendAudit(dup)
		})
		if !errors.Is(err, storage.ErrAlreadyExists) {
			t.Fatalf("AppendAudit of an existing ID: got %v, want ErrAlreadyExists", err)
		}
		sameList(t, "audit trail after a failed append", auditListing.get(t, s, storage.AuditQuery{}), all, normAudit, auditID)
	})
}
