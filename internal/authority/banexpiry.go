package authority

import (
	"context"
	"errors"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// banExpiryBatch is how many bans one Update of AnnounceExpiredBans marks
// at most. Each is one rewritten ban record (its index entries do not
// change) and one event in the change's log key, so 100 fit etcd's
// default --max-txn-ops of 128, as revokeBatch does; a smaller bound
// halves it until it fits.
const banExpiryBatch = 100

// banExpiryScanPage is how many bans one read transaction of the scan
// reads: short Views, as Sweep's.
var banExpiryScanPage = 1000

// AnnounceExpiredBans emits storage.EventBanExpired, once, for every full
// user ban whose ExpireTime has passed, that was not lifted and not yet
// announced, and records when in the ban (ExpiryAnnounced): a ban runs
// out without any write, and the Shared Signals transmitter needs an
// event to tell receivers the account is enabled again. Lifted bans were
// announced by their lift (ban.lifted); capability bans and device or IP
// bans are not announced (no account changes state).
//
// It returns next, the earliest expiry of a full user ban still in force
// (zero if none), for the caller's loop to wake at (the transmitter's,
// capped at a minute and woken by ban events, which may bring earlier
// ones).
//
// The bans are scanned in ID order, banExpiryScanPage per read
// transaction; the announcements go in Updates of at most banExpiryBatch
// bans (halved while the store answers ErrTxnTooLarge), each re-reading
// its bans and announcing only those still due, so a batch run again,
// a concurrent call on another replica, or a lift meanwhile announces
// nothing twice. A failure stops the call; what committed stands and the
// rest goes with the next call. The announcements are not audited (no
// one acted: the ban's own expiry did; like Sweep, one log line per call
// that announced any).
func (a *Authority) AnnounceExpiredBans(ctx context.Context) (next time.Time, err error) {
	now := a.now()
	batch, after, announced := banExpiryBatch, "", 0
	for {
		ids, cursor, soonest, done, err := a.expiredBanCandidates(ctx, after, now)
		if err != nil {
			return time.Time{}, err
		}
		if !soonest.IsZero() && (next.IsZero() || soonest.Before(next)) {
			next = soonest
		}
		for len(ids) > 0 {
			n := min(batch, len(ids))
			marked, err := a.announceBanExpiries(ctx, ids[:n], now)
			if errors.Is(err, storage.ErrTxnTooLarge) && batch > 1 {
				batch /= 2
				continue
			}
			if err != nil {
				if announced > 0 {
					a.log.Info("announced expired bans before failing", "bans", announced, "error", err)
				}
				return time.Time{}, err
			}
			announced += marked
			ids = ids[n:]
		}
		if done {
			if announced > 0 {
				a.log.Info("announced expired bans", "bans", announced)
			}
			return next, nil
		}
		after = cursor
	}
}

// expiryDue reports whether b is a ban AnnounceExpiredBans announces at
// now.
func expiryDue(b storage.Ban, now time.Time) bool {
	return announcedKind(b) && b.ExpiredAt(now) && b.ExpiryAnnounced.IsZero()
}

// announcedKind reports whether b's expiry is ever announced: a full user
// ban not lifted.
func announcedKind(b storage.Ban) bool {
	return b.Kind == storage.SubjectUser && b.Full() && !b.Lifted()
}

// expiredBanCandidates reads one page of bans after after and returns the
// IDs of those due, the cursor for the next page, the earliest future
// expiry among the page's full user bans, and whether the bans ran out.
func (a *Authority) expiredBanCandidates(ctx context.Context, after string, now time.Time) (ids []string, next string, soonest time.Time, done bool, err error) {
	err = a.store.View(ctx, func(tx storage.ReadTx) error {
		ids, next, soonest, done = nil, after, time.Time{}, true
		n := 0
		for b, err := range tx.Bans(storage.BanQuery{After: after}) {
			if err != nil {
				return err
			}
			switch {
			case expiryDue(b, now):
				ids = append(ids, b.ID)
			case announcedKind(b) && !b.ExpireTime.IsZero() && now.Before(b.ExpireTime):
				if soonest.IsZero() || b.ExpireTime.Before(soonest) {
					soonest = b.ExpireTime
				}
			}
			next = b.ID
			if n++; n == banExpiryScanPage {
				done = false
				return nil
			}
		}
		return nil
	})
	return ids, next, soonest, done, err
}

// announceBanExpiries is one Update that announces the bans named by ids
// that are still due, and returns how many it announced.
func (a *Authority) announceBanExpiries(ctx context.Context, ids []string, now time.Time) (int, error) {
	var marked int
	_, err := a.store.Update(ctx, func(tx storage.Tx) error {
		marked = 0 // the function may run again
		for _, id := range ids {
			b, err := tx.Ban(id)
			if errors.Is(err, storage.ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			if !expiryDue(b, now) {
				continue // lifted or announced meanwhile
			}
			b.ExpiryAnnounced = now
			if err := tx.PutBan(b); err != nil {
				return err
			}
			if err := tx.Emit(storage.Event{Kind: storage.EventBanExpired, Time: now, Ban: &b}); err != nil {
				return err
			}
			marked++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return marked, nil
}
