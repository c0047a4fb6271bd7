package storagetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// olderAudit reads, in ID order, the IDs of the audit records after after
// that are older than cutoff, up to limit, stopping at the first record
// that is not: the way the authority's sweep finds what to delete.
func olderAudit(tx storage.ReadTx, after string, cutoff time.Time, limit int) ([]string, error) {
	var ids []string
	for r, err := range tx.AuditRecords(storage.AuditQuery{After: after}) {
		if err != nil {
			return nil, err
		}
		if !r.Time.Before(cutoff) || len(ids) == limit {
			break
		}
		ids = append(ids, r.ID)
	}
	return ids, nil
}

// deleteAudit deletes ids in one Update.
func deleteAudit(ids []string) func(storage.Tx) error {
	return func(tx storage.Tx) error {
		for _, id := range ids {
			if err := tx.DeleteAuditRecord(id); err != nil {
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

	t.Run("OlderThanCutoffInBatches", func(t *testing.T) {
		s, all := setup(t)
		rev := currentRevision(t, s)
		cutoff := at(7*time.Minute + time.Second) // aud_00 .. aud_07 are older
		after, batches, deleted := "", 0, 0
		for {
			var ids []string
			var err error
			// Each batch reads and deletes in one Update, as replicas
			// sweeping at once do.
			update(t, s, func(tx storage.Tx) error {
				if ids, err = olderAudit(tx, after, cutoff, 3); err != nil {
					return err
				}
				return deleteAudit(ids)(tx)
			})
			if len(ids) == 0 {
				break
			}
			batches++
			deleted += len(ids)
			after = ids[len(ids)-1]
		}
		if deleted != 8 || batches != 3 {
			t.Errorf("deleted %d records in %d batches of at most 3, want 8 in 3", deleted, batches)
		}
		sameList(t, "audit trail after the sweep", list(t, s), all[8:], normAudit, auditID)
		if got := currentRevision(t, s); got != rev {
			t.Errorf("revision %d after deleting audit records, want %d: sweeping emits no change", got, rev)
		}
	})

	t.Run("Idempotent", func(t *testing.T) {
		s, all := setup(t)
		ids := []string{"aud_00", "aud_01", "aud_02"}
		update(t, s, deleteAudit(ids))
		// Again, plus IDs that never existed.
		update(t, s, deleteAudit(append(ids, "aud_99", "zzz")))
		sameList(t, "audit trail after deleting twice", list(t, s), all[3:], normAudit, auditID)
	})

	t.Run("ConcurrentSweeps", func(t *testing.T) {
		// Two sweepers deleting overlapping records at once (replicas):
		// both succeed and every record goes once.
		s, all := setup(t)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, ids := range [][]string{{"aud_00", "aud_01", "aud_02", "aud_03"}, {"aud_02", "aud_03", "aud_04", "aud_05"}} {
			wg.Go(func() { _, errs[i] = s.Update(t.Context(), deleteAudit(ids)) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("concurrent deletes: %v", err)
		}
		sameList(t, "audit trail after concurrent deletes", list(t, s), all[6:], normAudit, auditID)
	})

	t.Run("ReadYourDeletes", func(t *testing.T) {
		s, all := setup(t)
		update(t, s, func(tx storage.Tx) error {
			if err := deleteAudit([]string{"aud_00", "aud_05"})(tx); err != nil {
				return err
			}
			got, err := collect(tx.AuditRecords(storage.AuditQuery{}))
			if err != nil {
				return err
			}
			want := append(append([]storage.AuditRecord{}, all[1:5]...), all[6:]...)
			sameList(t, "the Update's own listing after its deletes", got, want, normAudit, auditID)
			return nil
		})
	})

	t.Run("AtomicWithUpdate", func(t *testing.T) {
		s, all := setup(t)
		boom := errors.New("boom")
		_, err := s.Update(t.Context(), func(tx storage.Tx) error {
			if err := deleteAudit([]string{"aud_00", "aud_01"})(tx); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Update: %v, want boom", err)
		}
		sameList(t, "audit trail after a failed Update", list(t, s), all, normAudit, auditID)
	})

	t.Run("EmptyID", func(t *testing.T) {
		s, all := setup(t)
		_, err := s.Update(t.Context(), deleteAudit([]string{""}))
		if !errors.Is(err, storage.ErrInvalidRecord) {
			t.Errorf("DeleteAuditRecord(\"\"): %v, want ErrInvalidRecord", err)
		}
		sameList(t, "audit trail after a refused delete", list(t, s), all, normAudit, auditID)
	})

}
