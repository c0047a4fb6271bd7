package authority

import (
	"context"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// Snapshot is the state a verifier needs, as of Revision.
type Snapshot struct {
	Revision        int64
	Time            time.Time
	Bans            []storage.Ban        // active at Time
	RevokedSessions []storage.Session    // revoked, access tokens not yet expired
	Keys            []storage.SigningKey // public only
}

// Snapshot reads the state every mirror starts from, in one consistent
// view of the store.
func (a *Authority) Snapshot(ctx context.Context) (Snapshot, error) {
	var snap Snapshot
	err := a.store.View(ctx, func(tx storage.ReadTx) error {
		now := a.now()
		snap = Snapshot{Revision: tx.Revision(), Time: now}
		for b, err := range tx.Bans(storage.BanQuery{}) {
			if err != nil {
				return err
			}
			if b.ActiveAt(now) {
				snap.Bans = append(snap.Bans, b)
			}
		}
		for s, err := range tx.Sessions(storage.SessionQuery{}) {
			if err != nil {
				return err
			}
			if s.Revoked() && now.Before(s.AccessExpireTime) {
				snap.RevokedSessions = append(snap.RevokedSessions, s)
			}
		}
		var err error
		snap.Keys, err = verificationKeys(tx, now)
		return err
	})
	return snap, err
}
