package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// olderAudit reads, in ID order, the audit records after after that are
// older than cutoff, up to limit, stopping at the first record that is
// not: the way the authority's sweep finds what to delete.
func olderAudit(tx storage.ReadTx, after string, cutoff time.Time, limit int) ([]storage.AuditRecord, error) {
	var recs []storage.AuditRecord
	for r, err := range tx.AuditRecords(storage.AuditQuery{After: after}) {
		if err != nil {
			return nil, err
		}
		if !r.Time.Before(cutoff) || len(recs) == limit {
			break
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// deleteAudit deletes recs in one Update.
func deleteAudit(recs []storage.AuditRecord) func(storage.Tx) error {
	return func(tx storage.Tx) error {
		for _, r := range recs {
			if err := tx.DeleteAuditRecord(r); err != nil {
				return err
			}
		}
		return nil
	}
}

// testAuditSweep is the contract audit retention relies on: records are
// listed in ID (time) order so a sweep can stop at the first one within
// the retention, deletions are idempotent, atomic with their Update, seen
// by the Update's own reads, and emit nothing.
func testAuditSweep(t *testing.T, newStore func(*testing.T) storage.Store) {
	setup := func(t *testing.T) (storage.Store, []storage.AuditRecord) {
		s := newStore(t)
		all := auditFixtures()
		update(t, s, func(tx storage.Tx) error {
			for _, r := range all {
				if err := tx.AppendAudit(r); err != nil {
					return err
				}
			}
			return nil
		})
		return s, all
	}
	list := func(t *testing.T, s storage.Store) []storage.AuditRecord {
		return auditListing.get(t, s, storage.AuditQuery{})
	}
	// byID returns the fixtures with these IDs, as the sweep passes them;
	// an ID that is not one of them gives a record with that ID and a
	// subject and actor of its own.
	byID := func(all []storage.AuditRecord, ids ...string) []storage.AuditRecord {
		var out []storage.AuditRecord
	next:
		for _, id := range ids {
			for _, r := range all {
				if r.ID == id {
					out = append(out, r)
					continue next
				}
			}
			out = append(out, storage.AuditRecord{ID: id, Time: at(time.Hour), Subject: "user:ghost", Actor: "ghost-key"})
		}
		return out
	}
	// indexed checks the listings through the indexes: a deleted record's
	// entries went with it (bolt reports an entry naming no record as
	// corruption).
	indexed := func(t *testing.T, s storage.Store, want []storage.AuditRecord) {
		t.Helper()
		auditListing.check(t, s, want, auditQueries, []string{"", "aud_04"})
	}

	t.Run("OlderThanCutoffInBatches", func(t *testing.T) {
		s, all := setup(t)
		rev := currentRevision(t, s)
		cutoff := at(7*time.Minute + time.Second) // aud_00 .. aud_07 are older
		after, batches, deleted := "", 0, 0
		for {
			var recs []storage.AuditRecord
			var err error
			// Each batch reads and deletes in one Update, as replicas
			// sweeping at once do.
			update(t, s, func(tx storage.Tx) error {
				if recs, err = olderAudit(tx, after, cutoff, 3); err != nil {
					return err
				}
				return deleteAudit(recs)(tx)
			})
			if len(recs) == 0 {
				break
			}
			batches++
			deleted += len(recs)
			after = recs[len(recs)-1].ID
		}
		if deleted != 8 || batches != 3 {
			t.Errorf("deleted %d records in %d batches of at most 3, want 8 in 3", deleted, batches)
		}
		sameList(t, "audit trail after the sweep", list(t, s), all[8:], normAudit, auditID)
		indexed(t, s, all[8:])
		if got := currentRevision(t, s); got != rev {
			t.Errorf("revision %d after deleting audit records, want %d: sweeping emits no change", got, rev)
		}
	})

	t.Run("Idempotent", func(t *testing.T) {
		s, all := setup(t)
		ids := []string{"aud_00", "aud_01", "aud_02"}
		update(t, s, deleteAudit(byID(all, ids...)))
		// Again, plus IDs that never existed.
		update(t, s, deleteAudit(byID(all, append(ids, "aud_99", "zzz")...)))
		sameList(t, "audit trail after deleting twice", list(t, s), all[3:], normAudit, auditID)
		indexed(t, s, all[3:])
	})

	t.Run("ConcurrentSweeps", func(t *testing.T) {
		// Two sweepers deleting overlapping records at once (replicas):
		// both succeed and every record goes once.
		s, all := setup(t)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, ids := range [][]string{{"aud_00", "aud_01", "aud_02", "aud_03"}, {"aud_02", "aud_03", "aud_04", "aud_05"}} {
			wg.Go(func() { _, errs[i] = s.Update(t.Context(), deleteAudit(byID(all, ids...))) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("concurrent deletes: %v", err)
		}
		sameList(t, "audit trail after concurrent deletes", list(t, s), all[6:], normAudit, auditID)
		indexed(t, s, all[6:])
	})

	t.Run("ReadYourDeletes", func(t *testing.T) {
		s, all := setup(t)
		update(t, s, func(tx storage.Tx) error {
			if err := deleteAudit(byID(all, "aud_00", "aud_05"))(tx); err != nil {
				return err
			}
			got, err := collect(tx.AuditRecords(storage.AuditQuery{}))
			if err != nil {
				return err
			}
			want := append(append([]storage.AuditRecord{}, all[1:5]...), all[6:]...)
			sameList(t, "the Update's own listing after its deletes", got, want, normAudit, auditID)
			// And through the indexes (aud_00 and aud_05 are both of
			// user:alice; aud_00 of alice-key, aud_05 of bob-key).
			for _, q := range []storage.AuditQuery{{Subject: "user:alice"}, {Actor: "alice-key"}, {Actor: "bob-key"}} {
				got, err := collect(tx.AuditRecords(q))
				if err != nil {
					return err
				}
				sameList(t, fmt.Sprintf("the Update's own listing %+v after its deletes", q), got, auditListing.expect(want, q), normAudit, auditID)
			}
			return nil
		})
	})

	t.Run("AtomicWithUpdate", func(t *testing.T) {
		s, all := setup(t)
		boom := errors.New("boom")
		_, err := s.Update(t.Context(), func(tx storage.Tx) error {
			if err := deleteAudit(byID(all, "aud_00", "aud_01"))(tx); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Update: %v, want boom", err)
		}
		sameList(t, "audit trail after a failed Update", list(t, s), all, normAudit, auditID)
		indexed(t, s, all)
	})

	t.Run("EmptyID", func(t *testing.T) {
		s, all := setup(t)
		_, err := s.Update(t.Context(), deleteAudit([]storage.AuditRecord{{}}))
		if !errors.Is(err, storage.ErrInvalidRecord) {
			t.Errorf("DeleteAuditRecord(\"\"): %v, want ErrInvalidRecord", err)
		}
		sameList(t, "audit trail after a refused delete", list(t, s), all, normAudit, auditID)
	})

}
