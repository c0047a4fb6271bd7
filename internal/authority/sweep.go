package authority

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// DefaultSessionRetention is how long an ended session (and its refresh
// tokens) stays in the store before Sweep deletes it.
const DefaultSessionRetention = 7 * 24 * time.Hour

// sweepScanPage is how many sessions one read transaction of Sweep's scan
// reads: short Views, so that a bolt read transaction does not pin old
// pages for long and an etcd range stays small.
const sweepScanPage = 1000

// sweepBatch is how many keys one Update of Sweep deletes at most. A
// refresh token is two (its record and its index entry), a session at
// most four (its record and three index entries). The etcd backend also
// rewrites one guard key per bucket it deletes from (six), so 100 stays
// under etcd's default --max-txn-ops of 128. A smaller bound halves it,
// down to sweepMinBatch.
const sweepBatch = 100

// sweepMinBatch is the smallest batch that still makes progress: a
// session's four keys, or a refresh token's two.
const sweepMinBatch = 4

// SweepResult counts what one Sweep call deleted.
type SweepResult struct {
	Sessions      int // sessions deleted, with all their refresh tokens
	RefreshTokens int // refresh-token records deleted (every generation)
	Updates       int // Updates that committed
}

// Sweep deletes the sessions that ended (ExpireTime) at least retention
// ago, each with every refresh-token record of its lineage (the current
// one and the superseded ones kept for theft detection) and its index
// entries. Nothing else is touched: bans, audit records, API keys and
// signing keys have their own lifetimes.
//
// What stays, and why:
//   - A session not yet expired, even revoked: its refresh tokens must keep
//     answering SESSION_REVOKED or TOKEN_THEFT_DETECTED until it ends.
//   - A revoked session whose access tokens may still be valid: the mirror
//     snapshot carries it until AccessExpireTime. Access tokens never
//     outlive their session (sign caps them at ExpireTime), so the first
//     rule already keeps these; the check is repeated so the snapshot's
//     rule holds whatever retention is.
//   - An expired session within retention, so that "sessions --all" still
//     lists it and a late refresh still answers SESSION_EXPIRED rather
//     than TOKEN_INVALID.
//
// Sweep scans the sessions in ID order (creation order), sweepScanPage per
// read transaction, and stops at the first one created after the cutoff:
// no later session can have ended before it. Each batch of deletions is
// one Update of at most sweepBatch keys that reads every session again and
// deletes it only if it is still sweepable, so a batch run again (the
// store's retries), a concurrent Sweep on another replica, or an
// interrupted pass does no harm: a session's tokens go first and the
// session last, so a session whose tokens took more than one Update is
// found again by the next pass. Deletions emit no events (mirrors do not
// hold expired sessions) and are not audited one by one: Sweep logs one
// line per pass with the counts.
//
// A failure stops the pass; what was deleted stands and is counted in the
// returned result.
func (a *Authority) Sweep(ctx context.Context, retention time.Duration) (SweepResult, error) {
	if retention < 0 {
		return SweepResult{}, invalid("retention", "must not be negative")
	}
	start := time.Now() // the pass's duration, for the log; never a decision
	res, err := a.sweep(ctx, retention)
	args := []any{"sessions", res.Sessions, "refresh_tokens", res.RefreshTokens, "updates", res.Updates,
		"retention", retention.String(), "took", time.Since(start).Round(time.Millisecond).String()}
	if err != nil {
		a.log.Error("sweep of expired sessions stopped", append(args, "error", err)...)
		return res, err
	}
	a.log.Info("swept expired sessions", args...)
	return res, nil
}

func (a *Authority) sweep(ctx context.Context, retention time.Duration) (SweepResult, error) {
	now := a.now()
	cutoff := now.Add(-retention)
	var res SweepResult
	batch := sweepBatch
	after := ""
	for {
		ids, next, done, err := a.sweepCandidates(ctx, after, now, cutoff)
		if err != nil {
			return res, err
		}
		for len(ids) > 0 {
			n, err := a.sweepBatch(ctx, ids, batch, now, cutoff, &res)
			if errors.Is(err, storage.ErrTxnTooLarge) && batch > sweepMinBatch {
				batch = max(batch/2, sweepMinBatch)
				continue
			}
			if err != nil {
				return res, err
			}
			ids = ids[n:]
		}
		if done {
			return res, nil
		}
		after = next
	}
}

// sweepable reports whether s may be deleted.
func sweepable(s storage.Session, now, cutoff time.Time) bool {
	return !cutoff.Before(s.ExpireTime) && !now.Before(s.AccessExpireTime)
}

// sweepCandidates reads one page of sessions after after and returns the
// IDs of the sweepable ones, the cursor for the next page, and whether the
// scan is over (the sessions ran out, or the page reached one created
// after cutoff).
func (a *Authority) sweepCandidates(ctx context.Context, after string, now, cutoff time.Time) (ids []string, next string, done bool, err error) {
	err = a.store.View(ctx, func(tx storage.ReadTx) error {
		ids, next, done = nil, after, true
		n := 0
		for s, err := range tx.Sessions(storage.SessionQuery{After: after}) {
			if err != nil {
				return err
			}
			if s.CreateTime.After(cutoff) {
				return nil // created later, so ended later (see Sweep)
			}
			if sweepable(s, now, cutoff) {
				ids = append(ids, s.ID)
			}
			next = s.ID
			if n++; n == sweepScanPage {
				done = false
				return nil
			}
		}
		return nil
	})
	return ids, next, done, err
}

// sweepBatch runs one Update deleting, in order, the sessions named by ids
// (those still sweepable) with their refresh tokens, up to limit keys. It
// returns how many of ids it finished; a session whose tokens did not all
// fit stays first in line, with fewer tokens, for the next Update.
func (a *Authority) sweepBatch(ctx context.Context, ids []string, limit int, now, cutoff time.Time, res *SweepResult) (int, error) {
	var finished, sessions, tokens int
	_, err := a.store.Update(ctx, func(tx storage.Tx) error {
		finished, sessions, tokens = 0, 0, 0 // the function may run again
		room := limit
		for _, id := range ids {
			s, err := tx.Session(id)
			if errors.Is(err, storage.ErrNotFound) {
				finished++ // swept meanwhile (another replica)
				continue
			} else if err != nil {
				return err
			}
			if !sweepable(s, now, cutoff) {
				finished++ // cannot happen to an ended session, but never delete a live one
				continue
			}
			hashes, all, err := sessionTokenHashes(tx, id, room/2)
			if err != nil {
				return err
			}
			for _, h := range hashes {
				if err := tx.DeleteRefreshToken(h); err != nil {
					return err
				}
			}
			tokens += len(hashes)
			room -= 2 * len(hashes)
			if !all || room < sweepMinBatch {
				if len(hashes) == 0 && finished == 0 {
					return fmt.Errorf("sweep: batch of %d keys cannot delete session %s", limit, id)
				}
				return nil // the session goes with the next Update
			}
			if err := tx.DeleteSession(id); err != nil {
				return err
			}
			sessions++
			finished++
			if room -= sweepMinBatch; room < sweepMinBatch {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	res.Sessions += sessions
	res.RefreshTokens += tokens
	res.Updates++
	return finished, nil
}

// sessionTokenHashes returns the hashes of up to limit refresh tokens of a
// session, and whether that is all of them.
func sessionTokenHashes(tx storage.ReadTx, sessionID string, limit int) ([][]byte, bool, error) {
	var out [][]byte
	for r, err := range tx.RefreshTokens(sessionID) {
		if err != nil {
			return nil, false, err
		}
		if len(out) == limit {
			return out, false, nil
		}
		out = append(out, r.Hash)
	}
	return out, true, nil
}
