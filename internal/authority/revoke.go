package authority

import (
	"context"
	"errors"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// revokeBatch is how many sessions one Update revokes once the revocations
// of an operation did not fit in a single Update. A revocation rewrites one
// session record (its index entries do not change) and adds one event, so
// 100 fit etcd's default --max-txn-ops of 128 with room for the audit
// record, the ban and the change's log key. A smaller bound (or sessions
// with large attributes against --max-request-bytes) halves it until it
// fits.
const revokeBatch = 100

// revocation is an operation that revokes a set of live sessions, with the
// records that commit alongside them.
type revocation struct {
	// pick returns, in ID order, the live sessions to revoke whose ID is
	// greater than after: at most limit of them, or all when limit < 0.
	pick func(tx storage.ReadTx, after string, limit int) ([]storage.Session, error)
	// by and reason go into every revoked session.
	by, reason string
	// head, when set, writes what must commit in the first Update however
	// many revocations fit in it (a ban and its event), before them.
	head func(tx storage.Tx) error
	// audit writes the audit record of an Update's n revocations, after
	// them; first tells the first Update (which head wrote into) from the
	// later ones.
	audit func(tx storage.Tx, n int, first bool) error
}

// revokeAll commits rv in one Update when the store takes it whole (bolt
// always; etcd when it fits the cluster's bounds), so that the common case
// stays atomic and one change. When the store answers ErrTxnTooLarge it
// splits: the first Update commits rv.head with as many revocations as
// fit (revokeBatch, halved until it fits, possibly none), and further
// Updates revoke the rest in batches of the size that fitted. Each batch
// reads the sessions again and revokes only those still live, from where
// the previous one stopped, so a batch run again (the store retries a
// conflicting Update) or racing another revocation revokes nothing twice.
// Sessions can be skipped by the cursor only if created meanwhile, which a
// ban refuses; sessions RevokeUserSessions's batches miss that way are
// ones created after the call began.
//
// It returns how many sessions it revoked, the revision of the last Update
// that committed, and whether the first one did (after which an error
// means the work is incomplete: see IncompleteError).
func (a *Authority) revokeAll(ctx context.Context, rv revocation, now time.Time) (revoked int, rev int64, committed bool, err error) {
	limit, after := -1, ""
	for {
		var batch []storage.Session
		var more bool
		r, err := a.store.Update(ctx, func(tx storage.Tx) (err error) {
			batch, more, err = rv.write(tx, now, after, limit, !committed)
			return err
		})
		if errors.Is(err, storage.ErrTxnTooLarge) {
			switch {
			case limit < 0:
				limit = revokeBatch
				continue
			case limit > 1, limit == 1 && !committed:
				// The first Update may shrink to the ban alone: it must
				// commit before any revocation can.
				limit /= 2
				continue
			}
		}
		if err != nil {
			return revoked, rev, committed, err
		}
		if !committed || len(batch) > 0 {
			rev = r // an empty later batch wrote nothing
		}
		committed = true
		revoked += len(batch)
		if !more {
			return revoked, rev, true, nil
		}
		if len(batch) > 0 {
			after = batch[len(batch)-1].ID
		}
		// A first Update that had room for none leaves batches of one.
		limit = max(limit, 1)
	}
}

// write is one Update of rv: when first, rv.head, then the live sessions
// after the cursor (at most limit, or all when limit < 0), then the audit
// record. more tells whether sessions are left beyond limit. A later
// batch that finds none left writes nothing.
func (rv revocation) write(tx storage.Tx, now time.Time, after string, limit int, first bool) (batch []storage.Session, more bool, err error) {
	peek := limit // read one more than the batch, to know whether to go on
	if limit >= 0 {
		peek = limit + 1
	}
	found, err := rv.pick(tx, after, peek)
	if err != nil {
		return nil, false, err
	}
	batch = found
	if limit >= 0 && len(found) > limit {
		batch, more = found[:limit], true
	}
	if !first && len(batch) == 0 {
		return nil, false, nil // revoked meanwhile by someone else: nothing to record
	}
	if first && rv.head != nil {
		if err := rv.head(tx); err != nil {
			return nil, false, err
		}
	}
	for _, s := range batch {
		if err := revoke(tx, s, now, rv.by, rv.reason); err != nil {
			return nil, false, err
		}
	}
	return batch, more, rv.audit(tx, len(batch), first)
}

// liveSessions returns, in ID order, the sessions q selects that are live
// at now and that match accepts (nil: all): at most limit of them, or all
// when limit < 0.
func liveSessions(tx storage.ReadTx, q storage.SessionQuery, match func(storage.Session) bool, now time.Time, limit int) ([]storage.Session, error) {
	var out []storage.Session
	if limit == 0 {
		return nil, nil
	}
	for s, err := range tx.Sessions(q) {
		if err != nil {
			return nil, err
		}
		if !s.Revoked() && !s.ExpiredAt(now) && (match == nil || match(s)) {
			out = append(out, s)
			if len(out) == limit {
				break
			}
		}
	}
	return out, nil
}
