package authority

import (
	"context"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// Writer makes several of the authority's writes in one store
// transaction: they commit together, in one durable commit, or not at
// all. The Shared Signals receiver applies a run of SETs this way, so that
// a burst costs one commit instead of one per SET. Each write validates
// its input as the Authority method of the same name does, emits the same
// events and writes the same audit records; a Writer's reads see the
// writes made before them in the same transaction.
//
// Unlike CreateBan and RevokeUserSessions, a Writer never splits a write
// into several Updates: a transaction the store cannot take whole (etcd's
// --max-txn-ops) fails with storage.ErrTxnTooLarge, and the caller makes
// fewer writes per transaction, or calls the Authority method.
type Writer struct {
	a   *Authority
	tx  storage.Tx
	now time.Time
}

// Write runs fn in one Update and returns its revision. The store may run
// fn more than once (an Update that conflicted on etcd): fn must write
// only through w and w.Tx, and keep no state from an earlier run.
func (a *Authority) Write(ctx context.Context, fn func(*Writer) error) (int64, error) {
	now := a.now()
	return a.store.Update(ctx, func(tx storage.Tx) error {
		return fn(&Writer{a: a, tx: tx, now: now})
	})
}

// Tx is the transaction, for the caller's own records beside the writes.
func (w *Writer) Tx() storage.Tx { return w.tx }

// Now is the time every write of the transaction records.
func (w *Writer) Now() time.Time { return w.now }

// CreateBan records a ban and, when it is full, revokes every matching
// live session, as Authority.CreateBan; it returns the ban and how many
// sessions it revoked.
func (w *Writer) CreateBan(actor Actor, in BanInput) (storage.Ban, int, error) {
	ban, rv, err := w.a.newBan(actor, in, w.now)
	if err != nil {
		return storage.Ban{}, 0, err
	}
	revoked, _, err := rv.write(w.tx, w.now, "", -1, true)
	return ban, len(revoked), err
}

// RevokeUserSessions revokes every live session of a user in a tenant, as
// Authority.RevokeUserSessions, and returns how many.
func (w *Writer) RevokeUserSessions(actor Actor, tenantID, userID, reason string) (int, error) {
	_, rv, err := userRevocation(actor, tenantID, userID, reason, w.now)
	if err != nil {
		return 0, err
	}
	revoked, _, err := rv.write(w.tx, w.now, "", -1, true)
	return len(revoked), err
}

// ActiveBans returns the bans in force on a user in a tenant (and those
// of every tenant), through the bans' index.
func (w *Writer) ActiveBans(tenantID, userID string) ([]storage.Ban, error) {
	tid, err := tenant(tenantID, false)
	if err != nil {
		return nil, err
	}
	if err := checkID("user_id", userID, true); err != nil {
		return nil, err
	}
	var bans []storage.Ban
	err = eachActiveBan(w.tx, subjects{tenant: tid, user: userID}, w.now, func(b storage.Ban) bool {
		bans = append(bans, b)
		return true
	})
	return bans, err
}

// Issuer returns a registered external issuer (ErrNotFound when none).
func (w *Writer) Issuer(issuerURL string) (storage.Issuer, error) {
	is, err := w.tx.Issuer(issuerURL)
	if err != nil {
		return storage.Issuer{}, issuerNotFound(err, issuerURL)
	}
	return is, nil
}
