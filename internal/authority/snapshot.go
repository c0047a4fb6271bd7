package authority

import (
	"context"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// The event stream reads the store through the methods below, so that the
// server never reaches past the domain: the changes after a revision, the
// current revision, the store's ID, and the presence of the other replicas
// of a shared store.

// Watch returns a watcher of the store's changes after afterRevision
// (storage.Store.Watch).
func (a *Authority) Watch(ctx context.Context, afterRevision int64) (storage.Watcher, error) {
	return a.store.Watch(ctx, afterRevision)
}

// Revision is the store's last committed revision.
func (a *Authority) Revision(ctx context.Context) (int64, error) {
	var rev int64
	err := a.store.View(ctx, func(tx storage.ReadTx) error { rev = tx.Revision(); return nil })
	return rev, err
}

// StoreID identifies the store's history (storage.Store.StoreID).
func (a *Authority) StoreID() string { return a.store.StoreID() }

// Presence is the store's storage.Presence when several replicas share the
// store; ok is false for a store one process owns.
func (a *Authority) Presence() (p storage.Presence, ok bool) {
	p, ok = a.store.(storage.Presence)
	return p, ok
}

// Snapshot is the state a verifier needs, as of Revision.
type Snapshot struct {
	Revision        int64
	Time            time.Time
	Bans            []storage.Ban        // active at Time
	RevokedSessions []storage.Session    // revoked, access tokens not yet expired
	Keys            []storage.SigningKey // public only
}

// SnapshotSink receives a snapshot as StreamSnapshot reads it. The
// records passed are the sink's to keep; an error ends the read.
type SnapshotSink interface {
	// Begin starts the snapshot: its revision, its time and its keys come
	// first. Should the store run the read again, Begin is called again:
	// the sink starts over.
	Begin(rev int64, now time.Time, keys []storage.SigningKey) error
	Ban(b *storage.Ban) error                // each ban active at now
	RevokedSession(s *storage.Session) error // each revoked session whose access tokens have not expired at now
}

// IssuerSink is a SnapshotSink that also takes the external issuers, with
// their keys, right after Begin (before any ban).
type IssuerSink interface {
	Issuers(list []storage.Issuer) error
	// ExternalRevocation takes each revocation of an external session or
	// token still in force, after the revoked sessions.
	ExternalRevocation(r *storage.ExternalRevocation) error
}

func streamIssuers(tx storage.ReadTx, sink IssuerSink) error {
	var list []storage.Issuer
	for i, err := range tx.Issuers() {
		if err != nil {
			return err
		}
		list = append(list, *eventIssuer(i))
	}
	return sink.Issuers(list)
}

// StreamSnapshot reads the state every mirror starts from, in one
// consistent view of the store, and passes it to sink record by record:
// a large ban set is never held whole here (a million bans would be
// hundreds of megabytes of records, copied as a slice of them grows),
// only in whatever form the sink keeps it.
func (a *Authority) StreamSnapshot(ctx context.Context, sink SnapshotSink) error {
	return a.store.View(ctx, func(tx storage.ReadTx) error {
		now := a.now()
		keys, err := verificationKeys(tx, now)
		if err != nil {
			return err
		}
		if err := sink.Begin(tx.Revision(), now, keys); err != nil {
			return err
		}
		if is, ok := sink.(IssuerSink); ok {
			if err := streamIssuers(tx, is); err != nil {
				return err
			}
		}
		for b, err := range tx.Bans(storage.BanQuery{}) {
			if err != nil {
				return err
			}
			if b.ActiveAt(now) {
				if err := sink.Ban(&b); err != nil {
					return err
				}
			}
		}
		for s, err := range tx.Sessions(storage.SessionQuery{}) {
			if err != nil {
				return err
			}
			if s.Revoked() && now.Before(s.AccessExpireTime) {
				if err := sink.RevokedSession(&s); err != nil {
					return err
				}
			}
		}
		if is, ok := sink.(IssuerSink); ok {
			return streamExternalRevocations(tx, is, now) // extrevoke.go
		}
		return nil
	})
}

// Snapshot reads the same state as StreamSnapshot, whole.
func (a *Authority) Snapshot(ctx context.Context) (Snapshot, error) {
	var c snapshotCollector
	err := a.StreamSnapshot(ctx, &c)
	return c.snap, err
}

type snapshotCollector struct{ snap Snapshot }

func (c *snapshotCollector) Begin(rev int64, now time.Time, keys []storage.SigningKey) error {
	c.snap = Snapshot{Revision: rev, Time: now, Keys: keys}
	return nil
}

func (c *snapshotCollector) Ban(b *storage.Ban) error {
	c.snap.Bans = append(c.snap.Bans, *b)
	return nil
}

func (c *snapshotCollector) RevokedSession(s *storage.Session) error {
	c.snap.RevokedSessions = append(c.snap.RevokedSessions, *s)
	return nil
}
