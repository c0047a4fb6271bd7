package authority

import (
	"context"
	"errors"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// DefaultAuditRetention is how long an audit record stays before
// SweepAudit deletes it: long enough for an investigation months after
// the fact, short enough that a flood of denied calls does not stay on
// disk forever.
const DefaultAuditRetention = 90 * 24 * time.Hour

// auditSweepBatch is how many audit records one Update of SweepAudit
// deletes at most: up to three keys each (the record and its index
// entries by subject and by actor), plus the guard key the etcd backend
// rewrites for each of those three buckets, so at most sweepBatch keys,
// under etcd's default --max-txn-ops of 128. It halves on
// storage.ErrTxnTooLarge.
const auditSweepBatch = (sweepBatch - 3) / 3

// AuditSweepResult counts what one SweepAudit call deleted.
type AuditSweepResult struct {
	Records int // audit records deleted
	Updates int // Updates that deleted at least one
}

// SweepAudit deletes the audit records older than retention (their Time
// is before now - retention). A retention of 0 keeps every record: the
// call does nothing.
//
// Audit record IDs are time-ordered, so the records are read from the
// oldest and the pass stops at the first one within the retention. An ID
// made while a clock stood still or stepped back sorts after records with
// later times; such a record waits until the ones before it are swept,
// and a record within the retention is never deleted.
//
// Each batch is one Update that reads the next records after the last one
// it deleted (at most auditSweepBatch, and the one that stops it) and
// deletes them: the reads are as short as the deletions, and the count is
// exact. Two replicas sweeping at once race on the same range; the loser's
// Update sees the range changed (etcd's guard key), runs again and finds
// the records gone, so nothing is counted twice. Records are immutable, so
// nothing can make a deleted record one that should have stayed. The pass
// logs one line with the count; deletions emit no events.
func (a *Authority) SweepAudit(ctx context.Context, retention time.Duration) (AuditSweepResult, error) {
	if retention < 0 {
		return AuditSweepResult{}, invalid("audit_retention", "must not be negative")
	}
	if retention == 0 {
		return AuditSweepResult{}, nil
	}
	start := time.Now() // the pass's duration, for the log; never a decision
	res, err := a.sweepAudit(ctx, a.now().Add(-retention))
	args := []any{"records", res.Records, "updates", res.Updates,
		"retention", retention.String(), "took", time.Since(start).Round(time.Millisecond).String()}
	if err != nil {
		a.log.Error("sweep of old audit records stopped", append(args, "error", err)...)
		return res, err
	}
	a.log.Info("swept old audit records", args...)
	return res, nil
}

func (a *Authority) sweepAudit(ctx context.Context, cutoff time.Time) (AuditSweepResult, error) {
	var res AuditSweepResult
	batch := auditSweepBatch
	after := ""
	for {
		var recs []storage.AuditRecord
		var done bool
		_, err := a.store.Update(ctx, func(tx storage.Tx) error {
			recs, done = nil, true // the function may run again
			for r, err := range tx.AuditRecords(storage.AuditQuery{After: after}) {
				if err != nil {
					return err
				}
				if !r.Time.Before(cutoff) {
					break // within the retention, and so (nearly) all after it
				}
				if len(recs) == batch {
					done = false
					break
				}
				recs = append(recs, r)
			}
			// Each record as read: it names its index entries (no read
			// per record).
			for _, r := range recs {
				if err := tx.DeleteAuditRecord(r); err != nil {
					return err
				}
			}
			return nil
		})
		if errors.Is(err, storage.ErrTxnTooLarge) && batch > 1 {
			batch = max(batch/2, 1)
			continue
		}
		if err != nil {
			return res, err
		}
		if len(recs) > 0 {
			res.Records += len(recs)
			res.Updates++
			after = recs[len(recs)-1].ID
		}
		if done {
			return res, nil
		}
	}
}
