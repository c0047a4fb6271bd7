package authority

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"slices"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// setRSABits is the size of the RS256 SET key: SSF receivers commonly
// verify only RS256, and RFC 7518 §3.3 asks for at least 2048 bits.
const setRSABits = 2048

// setKeyGrace is how long a retired RS256 SET key stays published: SETs
// are signed when sent (push) or handed out (poll), and a receiver
// verifies them on receipt, so only the SETs in flight at the rotation
// still need it.
const setKeyGrace = time.Hour

// setKey returns the current RS256 SET key (not retired), if one exists
// (the oldest, should replicas ever have made two).
func setKey(tx storage.ReadTx) (storage.SigningKey, bool, error) {
	var out storage.SigningKey
	found := false
	for k, err := range tx.SigningKeys() {
		if err != nil {
			return storage.SigningKey{}, false, err
		}
		if k.Algorithm == algRS256 && k.RetireTime.IsZero() && (!found || k.CreateTime.Before(out.CreateTime) ||
			(k.CreateTime.Equal(out.CreateTime) && k.ID < out.ID)) {
			out, found = k, true
		}
	}
	return out, found, nil
}

// publishedSETKeys returns the RS256 SET keys the JWKS publishes at now:
// the current one, then those retired less than setKeyGrace ago, newest
// first.
func publishedSETKeys(tx storage.ReadTx, now time.Time) ([]storage.SigningKey, error) {
	var keys []storage.SigningKey
	for k, err := range tx.SigningKeys() {
		if err != nil {
			return nil, err
		}
		if k.Algorithm == algRS256 && (k.RetireTime.IsZero() || now.Before(k.VerifyUntil)) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, currentFirst)
	return keys, nil
}

// SETSigner returns the key that signs Security Event Tokens with alg and
// its kid: for "EdDSA" the current access-token key; for "RS256" the RSA
// key, created on first use (in one Update that re-checks, so concurrent
// first uses, on any replica, end with one key). Creating the RSA key
// emits no event: mirrors verify tokens, never SETs; it is audited and
// published in the JWKS (ListKeys).
func (a *Authority) SETSigner(ctx context.Context, alg string) (kid string, key crypto.Signer, err error) {
	switch alg {
	case algEdDSA:
		var cur storage.SigningKey
		err := a.store.View(ctx, func(tx storage.ReadTx) error {
			var err error
			cur, err = currentKey(tx)
			return err
		})
		if err != nil {
			return "", nil, err
		}
		return cur.ID, a.privateKey(cur), nil
	case algRS256:
		k, err := a.rsaSETKey(ctx)
		if err != nil {
			return "", nil, err
		}
		priv, err := a.rsaPrivateKey(k)
		if err != nil {
			return "", nil, err
		}
		return k.ID, priv, nil
	}
	return "", nil, invalid("alg", "SETs are signed with EdDSA or RS256, not %.40q", alg)
}

// rsaSETKey returns the stored RS256 key, creating it when there is none.
func (a *Authority) rsaSETKey(ctx context.Context) (storage.SigningKey, error) {
	if k, ok, err := a.viewSETKey(ctx); err != nil || ok {
		return k, err
	}
	// One generation per process at a time: RSA generation costs tens of
	// milliseconds of CPU, and the first SETs of several streams arrive
	// together.
	a.setKeyMu.Lock()
	defer a.setKeyMu.Unlock()
	if k, ok, err := a.viewSETKey(ctx); err != nil || ok {
		return k, err
	}
	now := a.now()
	fresh, err := newSETKey(now)
	if err != nil {
		return storage.SigningKey{}, err
	}
	var out storage.SigningKey
	_, err = a.store.Update(ctx, func(tx storage.Tx) error {
		k, ok, err := setKey(tx)
		if err != nil || ok {
			out = k // another replica made it first
			return err
		}
		if err := tx.PutSigningKey(fresh); err != nil {
			return err
		}
		out = fresh
		return tx.AppendAudit(storage.AuditRecord{
			ID: newID("aud_", now), Time: now, Action: "key.create", Actor: System.Name,
			TargetID: fresh.ID, Reason: "first SET signed with RS256",
		})
	})
	return out, err
}

// newSETKey generates an RS256 SET key.
func newSETKey(now time.Time) (storage.SigningKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, setRSABits)
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("generate the RS256 SET key: %w", err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return storage.SigningKey{}, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return storage.SigningKey{}, err
	}
	return storage.SigningKey{ID: newID("key_", now), Algorithm: algRS256, PrivateKey: privDER, PublicKey: pubDER, CreateTime: now}, nil
}

// rotateSETKey makes a new RS256 SET key current and retires the old one
// (if any), which stays published for setKeyGrace (RotateKey). Like the
// key's creation it emits no event: mirrors never verify SETs.
func (a *Authority) rotateSETKey(ctx context.Context, actor Actor, reason string) (added, retired storage.SigningKey, err error) {
	now := a.now()
	fresh, err := newSETKey(now)
	if err != nil {
		return added, retired, err
	}
	_, err = a.store.Update(ctx, func(tx storage.Tx) error {
		retired = storage.SigningKey{}
		old, found, err := setKey(tx)
		if err != nil {
			return err
		}
		details := map[string]string{"algorithm": algRS256}
		if found {
			old.RetireTime, old.VerifyUntil = now, now.Add(setKeyGrace)
			if err := tx.PutSigningKey(old); err != nil {
				return err
			}
			retired, details["retired_key_id"] = old, old.ID
		}
		if err := a.deleteUnusableKeys(tx, now); err != nil {
			return err
		}
		if err := tx.PutSigningKey(fresh); err != nil {
			return err
		}
		return tx.AppendAudit(storage.AuditRecord{
			ID: newID("aud_", now), Time: now, Action: "key.rotate", Actor: actor.Name, ActorAddr: actor.Addr, Channel: actor.Channel,
			TargetID: fresh.ID, Reason: reason, Details: details,
		})
	})
	if err != nil {
		return storage.SigningKey{}, storage.SigningKey{}, err
	}
	if retired.ID != "" {
		retired = *publicOnly(retired)
	}
	return *publicOnly(fresh), retired, nil
}

func (a *Authority) viewSETKey(ctx context.Context) (k storage.SigningKey, ok bool, err error) {
	err = a.store.View(ctx, func(tx storage.ReadTx) error {
		k, ok, err = setKey(tx)
		return err
	})
	return k, ok, err
}

// rsaPrivateKey parses (once per key) the PKCS#8 DER of an RS256 key.
func (a *Authority) rsaPrivateKey(k storage.SigningKey) (*rsa.PrivateKey, error) {
	if v, ok := a.setKeys.Load(k.ID); ok {
		return v.(*rsa.PrivateKey), nil
	}
	parsed, err := x509.ParsePKCS8PrivateKey(k.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("SET key %s: %w", k.ID, err)
	}
	priv, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("SET key %s: %T is not an RSA key", k.ID, parsed)
	}
	a.setKeys.Store(k.ID, priv)
	return priv, nil
}
