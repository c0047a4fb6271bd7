package storagetest

import (
	"net/netip"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// base is the suite's clock: every time is base plus an offset. It has
// nanoseconds so that a backend losing precision is caught.
var base = time.Date(2025, time.March, 14, 15, 9, 26, 535897932, time.UTC)

func at(d time.Duration) time.Time { return base.Add(d) }

func newSession(id, tenant, user, device string) storage.Session {
	s := storage.Session{
		ID:                id,
		TenantID:          tenant,
		UserID:            user,
		DeviceID:          device,
		ClientIP:          netip.MustParseAddr("2001:db8::7"),
		Attributes:        map[string]string{"app": "web", "id": id},
		CreateTime:        at(time.Minute),
		ExpireTime:        at(720 * time.Hour),
		RefreshTime:       at(2 * time.Minute),
		RefreshGeneration: 1,
		AccessExpireTime:  at(17 * time.Minute),
	}
	return s
}

func newBan(id, tenant string, kind storage.SubjectKind, value string) storage.Ban {
	return storage.Ban{
		ID:          id,
		TenantID:    tenant,
		Kind:        kind,
		Value:       value,
		Reason:      "spam " + id,
		Policy:      "tos-4.2",
		CreatedBy:   "moderator",
		CreatorAddr: "192.0.2.1:5000",
		CreateTime:  at(time.Hour),
		ExpireTime:  at(7 * 24 * time.Hour),
	}
}

func newSigningKey(id string, created time.Time) storage.SigningKey {
	return storage.SigningKey{
		ID:         id,
		Algorithm:  "EdDSA",
		PrivateKey: []byte("0123456789abcdef0123456789abcdef"),
		PublicKey:  []byte("public-" + id),
		CreateTime: created,
	}
}

// publicKey is k as events carry it: without the private key.
func publicKey(k storage.SigningKey) *storage.SigningKey {
	k.PrivateKey = nil
	return &k
}

func banEvent(kind storage.EventKind, b storage.Ban) storage.Event {
	return storage.Event{Kind: kind, Time: b.CreateTime, Ban: &b}
}

func sessionEvent(s storage.Session) storage.Event {
	return storage.Event{Kind: storage.EventSessionRevoked, Time: s.RevokeTime, Session: &s}
}

// emitAll emits events in order.
func emitAll(tx storage.Tx, events ...storage.Event) error {
	for _, e := range events {
		if err := tx.Emit(e); err != nil {
			return err
		}
	}
	return nil
}
