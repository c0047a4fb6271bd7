package authority

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// Signing key algorithms: EdDSA keys sign access tokens (and may sign
// SETs); the RS256 key signs only SETs, for receivers that cannot verify
// EdDSA (setsigner.go).
const (
	algEdDSA = "EdDSA"
	algRS256 = "RS256"
)

// tokenKey reports whether k is an access-token key: only those sign
// tokens and reach mirrors (snapshots and key events), and only they
// rotate with RotateKey's default. The RS256 SET keys rotate on their own
// (rotateSETKey).
func tokenKey(k storage.SigningKey) bool { return k.Algorithm == algEdDSA }

// currentKey returns the key that signs new tokens: the newest token key
// that is not retired.
func currentKey(tx storage.ReadTx) (storage.SigningKey, error) {
	var cur storage.SigningKey
	found := false
	for k, err := range tx.SigningKeys() {
		if err != nil {
			return storage.SigningKey{}, err
		}
		if tokenKey(k) && k.RetireTime.IsZero() && (!found || k.CreateTime.After(cur.CreateTime)) {
			cur, found = k, true
		}
	}
	if !found {
		return storage.SigningKey{}, errors.New("no signing key: the authority was not initialised")
	}
	return cur, nil
}

func newSigningKey(now time.Time) (storage.SigningKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	return storage.SigningKey{
		ID:         newID("key_", now),
		Algorithm:  algEdDSA,
		PrivateKey: priv.Seed(),
		PublicKey:  pub,
		CreateTime: now,
	}, nil
}

// publicOnly strips the private key, for events and listings.
func publicOnly(k storage.SigningKey) *storage.SigningKey {
	k.PrivateKey = nil
	return &k
}

// EnsureSigningKey creates the first signing key of a new store. It does
// nothing when a current key exists (another replica may have created it).
func (a *Authority) EnsureSigningKey(ctx context.Context) error {
	now := a.now()
	key, err := newSigningKey(now)
	if err != nil {
		return err
	}
	_, err = a.store.Update(ctx, func(tx storage.Tx) error {
		if _, err := currentKey(tx); err == nil {
			return nil
		}
		if err := tx.PutSigningKey(key); err != nil {
			return err
		}
		if err := tx.Emit(storage.Event{Kind: storage.EventKeyAdded, Time: now, Key: publicOnly(key)}); err != nil {
			return err
		}
		return tx.AppendAudit(storage.AuditRecord{
			ID: newID("aud_", now), Time: now, Action: "key.create", Actor: System.Name,
			TargetID: key.ID, Reason: "first start",
		})
	})
	return err
}

// RotateKey makes a new signing key current and retires the old one. alg
// names the key: "" or "EdDSA" the access-token key, whose retired key
// stays verifiable until every token it signed has expired; "RS256" the
// SET key (rotateSETKey). Retired keys nothing can use any more are
// deleted. retired is the zero key when there was none.
func (a *Authority) RotateKey(ctx context.Context, actor Actor, alg, reason string) (added, retired storage.SigningKey, err error) {
	if err := checkText("reason", reason); err != nil {
		return added, retired, err
	}
	switch alg {
	case "", algEdDSA:
		return a.rotateTokenKey(ctx, actor, reason)
	case algRS256:
		return a.rotateSETKey(ctx, actor, reason)
	}
	return added, retired, invalid("algorithm", "rotate the %s key or the %s SET key, not %.40q", algEdDSA, algRS256, alg)
}

// rotateTokenKey rotates the access-token key (RotateKey).
func (a *Authority) rotateTokenKey(ctx context.Context, actor Actor, reason string) (added, retired storage.SigningKey, err error) {
	now := a.now()
	key, err := newSigningKey(now)
	if err != nil {
		return added, retired, err
	}
	_, err = a.store.Update(ctx, func(tx storage.Tx) error {
		old, err := currentKey(tx)
		if err != nil {
			return err
		}
		old.RetireTime, old.VerifyUntil = now, now.Add(a.cfg.AccessTTL)
		if err := a.deleteUnusableKeys(tx, now); err != nil {
			return err
		}
		for _, k := range []storage.SigningKey{old, key} {
			if err := tx.PutSigningKey(k); err != nil {
				return err
			}
		}
		if err := tx.Emit(storage.Event{Kind: storage.EventKeyAdded, Time: now, Key: publicOnly(key)}); err != nil {
			return err
		}
		if err := tx.Emit(storage.Event{Kind: storage.EventKeyRetired, Time: now, Key: publicOnly(old)}); err != nil {
			return err
		}
		retired = old
		return tx.AppendAudit(storage.AuditRecord{
			ID: newID("aud_", now), Time: now, Action: "key.rotate", Actor: actor.Name, ActorAddr: actor.Addr, Channel: actor.Channel,
			TargetID: key.ID, Reason: reason, Details: map[string]string{"retired_key_id": old.ID},
		})
	})
	if err != nil {
		return storage.SigningKey{}, storage.SigningKey{}, err
	}
	a.current.Store(&key)
	return *publicOnly(key), *publicOnly(retired), nil
}

// maxKeyDeletes bounds the keys one rotation deletes, so that the rotation
// stays one small Update (etcd bounds the keys a transaction writes) even
// after a burst of rotations; the keys left over are deleted by the next
// rotations, and meanwhile verificationKeys ignores them.
const maxKeyDeletes = 32

func (a *Authority) deleteUnusableKeys(tx storage.Tx, now time.Time) error {
	var dead []string
	for k, err := range tx.SigningKeys() {
		if err != nil {
			return err
		}
		if !k.RetireTime.IsZero() && !now.Before(k.VerifyUntil) {
			dead = append(dead, k.ID)
			if len(dead) == maxKeyDeletes {
				break
			}
		}
	}
	for _, id := range dead {
		if err := tx.DeleteSigningKey(id); err != nil {
			return err
		}
	}
	return nil
}

// verificationKeys returns the public token keys that may still verify a
// token at now, the current signing key first, without private keys. It is
// what verifies tokens and what snapshots send to mirrors, so it holds no
// RS256 SET key.
func verificationKeys(tx storage.ReadTx, now time.Time) ([]storage.SigningKey, error) {
	var keys []storage.SigningKey
	for k, err := range tx.SigningKeys() {
		if err != nil {
			return nil, err
		}
		if tokenKey(k) && (k.RetireTime.IsZero() || now.Before(k.VerifyUntil)) {
			keys = append(keys, *publicOnly(k))
		}
	}
	slices.SortFunc(keys, currentFirst)
	return keys, nil
}

// currentFirst orders keys: the current (not retired) first, then the
// newest first.
func currentFirst(x, y storage.SigningKey) int {
	if x.RetireTime.IsZero() != y.RetireTime.IsZero() {
		if x.RetireTime.IsZero() {
			return -1
		}
		return 1
	}
	return y.CreateTime.Compare(x.CreateTime)
}

// ListKeys returns the public keys that may still verify something this
// authority signed: the token keys of verificationKeys, then the RS256 SET
// keys of publishedSETKeys (the JWKS publishes both; SET receivers need
// them).
func (a *Authority) ListKeys(ctx context.Context) ([]storage.SigningKey, error) {
	var keys []storage.SigningKey
	err := a.store.View(ctx, func(tx storage.ReadTx) error {
		var err error
		keys, err = verificationKeys(tx, a.now())
		if err != nil {
			return err
		}
		set, err := publishedSETKeys(tx, a.now())
		for _, k := range set {
			keys = append(keys, *publicOnly(k))
		}
		return err
	})
	return keys, err
}
