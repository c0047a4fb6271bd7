package authority

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// APIKeyPrefix starts every API key secret, so that secret scanners can
// recognise a leaked one. A secret is "pcl_" + key ID + "_" + 256 random
// bits; only the SHA-256 of the whole secret is stored.
const APIKeyPrefix = "pcl_"

// BootstrapKeyName names the admin key created on a new store.
const BootstrapKeyName = "bootstrap-admin"

// Scopes an API key may hold. ScopeAdmin grants every other scope.
const (
	ScopeSessionsWrite = "sessions:write"
	ScopeSessionsRead  = "sessions:read"
	ScopeBansWrite     = "bans:write"
	ScopeBansRead      = "bans:read"
	ScopeEventsWatch   = "events:watch"
	ScopeAuditRead     = "audit:read"
	ScopeKeysRead      = "keys:read"
	ScopeKeysAdmin     = "keys:admin"
	// ScopeSignals: a Shared Signals receiver of this authority's events,
	// managing its own streams and polling them (docs/signals.md).
	ScopeSignals = "signals"
	ScopeAdmin   = "admin"
)

// AllScopes lists the valid scopes.
var AllScopes = []string{ScopeSessionsWrite, ScopeSessionsRead, ScopeBansWrite, ScopeBansRead,
	ScopeEventsWatch, ScopeAuditRead, ScopeKeysRead, ScopeKeysAdmin, ScopeSignals, ScopeAdmin}

// HasScope reports whether k grants scope.
func HasScope(k storage.APIKey, scope string) bool {
	return slices.Contains(k.Scopes, ScopeAdmin) || slices.Contains(k.Scopes, scope)
}

// newAPIKey returns a key record and its secret.
func newAPIKey(name string, scopes []string, expire, now time.Time, by string) (storage.APIKey, string) {
	id := strings.TrimPrefix(newID("k", now), "k")
	secret := newSecret(APIKeyPrefix + id + "_")
	return storage.APIKey{
		ID: id, Name: name, SecretHash: hashSecret(secret), Scopes: scopes,
		CreateTime: now, ExpireTime: expire, CreatedBy: by,
	}, secret
}

// Authenticate returns the API key whose secret this is, if it is valid
// now. Every failure is the same ErrAPIKeyInvalid, so that a caller learns
// nothing about which keys exist.
func (a *Authority) Authenticate(ctx context.Context, secret string) (storage.APIKey, error) {
	id, ok := apiKeyID(secret)
	if !ok {
		return storage.APIKey{}, ErrAPIKeyInvalid
	}
	var k storage.APIKey
	err := a.store.View(ctx, func(tx storage.ReadTx) error {
		var err error
		k, err = tx.APIKey(id)
		return err
	})
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return storage.APIKey{}, ErrAPIKeyInvalid
	case err != nil:
		return storage.APIKey{}, err
	}
	if err := a.checkSecret(k, secret); err != nil {
		return storage.APIKey{}, err
	}
	return k, nil
}

// apiKeyID returns the key ID a secret names ("pcl_<id>_<random>"), or
// false when it is not shaped like one.
func apiKeyID(secret string) (string, bool) {
	rest, ok := strings.CutPrefix(secret, APIKeyPrefix)
	id, _, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || id == "" || len(secret) > maxIDLen {
		return "", false
	}
	return id, true
}

// checkSecret returns ErrAPIKeyInvalid unless secret is k's (compared in
// constant time) and k is neither revoked nor expired now.
func (a *Authority) checkSecret(k storage.APIKey, secret string) error {
	if subtle.ConstantTimeCompare(k.SecretHash, hashSecret(secret)) != 1 || !usable(k, a.now()) {
		return ErrAPIKeyInvalid
	}
	return nil
}

// usable reports whether k is neither revoked nor expired at now: whether
// its secret is accepted.
func usable(k storage.APIKey, now time.Time) bool {
	return k.RevokeTime.IsZero() && (k.ExpireTime.IsZero() || now.Before(k.ExpireTime))
}

// isUsableAdmin reports whether k is a usable key with scope admin.
func isUsableAdmin(k storage.APIKey, now time.Time) bool {
	return usable(k, now) && slices.Contains(k.Scopes, ScopeAdmin)
}

// EnsureBootstrapKey creates the bootstrap admin key when the store has no
// API key at all, and returns its secret; otherwise it returns "" (the key
// was created before, perhaps by another replica).
func (a *Authority) EnsureBootstrapKey(ctx context.Context) (string, error) {
	now := a.now()
	key, secret := newAPIKey(BootstrapKeyName, []string{ScopeAdmin}, time.Time{}, now, System.Name)
	created := false
	_, err := a.store.Update(ctx, func(tx storage.Tx) error {
		created = false
		for _, err := range tx.APIKeys() {
			if err != nil {
				return err
			}
			return nil // a key exists
		}
		created = true
		if err := tx.PutAPIKey(key); err != nil {
			return err
		}
		return tx.AppendAudit(storage.AuditRecord{
			ID: newID("aud_", now), Time: now, Action: "apikey.create", Actor: System.Name,
			TargetID: key.ID, Reason: "bootstrap", Details: map[string]string{"name": key.Name, "scopes": ScopeAdmin},
		})
	})
	if err != nil || !created {
		return "", err
	}
	return secret, nil
}

// RecordDenied writes the audit record of a call refused for its
// credential or scope. Failing to write it is logged, not returned: the
// call is refused either way.
func (a *Authority) RecordDenied(ctx context.Context, actor Actor, method, why string) {
	now := a.now()
	_, err := a.store.Update(ctx, func(tx storage.Tx) error {
		return tx.AppendAudit(storage.AuditRecord{
			ID: newID("aud_", now), Time: now, Action: "call.denied", Actor: actor.Name, ActorAddr: actor.Addr, Channel: actor.Channel,
			Reason: why, Details: map[string]string{"method": method},
		})
	})
	if err != nil {
		a.log.Warn("audit of a denied call failed", "method", method, "error", err)
	}
}

// CheckScopes validates a scope list.
func CheckScopes(scopes []string) error {
	if len(scopes) == 0 {
		return invalid("scopes", "name at least one of %s", strings.Join(AllScopes, ", "))
	}
	for _, s := range scopes {
		if !slices.Contains(AllScopes, s) {
			return invalid("scopes", "unknown scope %.64q; valid: %s", s, strings.Join(AllScopes, ", "))
		}
	}
	return nil
}

// CreateAPIKey creates a key and returns it with its secret (shown once).
// expire is when the key stops working; nil = never. A given time must be
// in the future, the zero time included (see checkExpireTime).
func (a *Authority) CreateAPIKey(ctx context.Context, actor Actor, name string, scopes []string, expire *time.Time) (storage.APIKey, string, error) {
	if err := checkName("name", name); err != nil {
		return storage.APIKey{}, "", err
	}
	if err := CheckScopes(scopes); err != nil {
		return storage.APIKey{}, "", err
	}
	now := a.now()
	var exp time.Time
	if expire != nil {
		var err error
		if exp, err = checkExpireTime(*expire, now); err != nil {
			return storage.APIKey{}, "", err
		}
	}
	key, secret := newAPIKey(name, slices.Compact(slices.Sorted(slices.Values(scopes))), exp, now, actor.Name)
	_, err := a.store.Update(ctx, func(tx storage.Tx) error {
		for k, err := range tx.APIKeys() {
			if err != nil {
				return err
			}
			if k.Name == name && k.RevokeTime.IsZero() {
				return invalid("name", "an API key named %q exists; revoke it or choose another name", name)
			}
		}
		if err := tx.PutAPIKey(key); err != nil {
			return err
		}
		return tx.AppendAudit(storage.AuditRecord{
			ID: newID("aud_", now), Time: now, Action: "apikey.create", Actor: actor.Name, ActorAddr: actor.Addr, Channel: actor.Channel,
			TargetID: key.ID, Details: map[string]string{"name": name, "scopes": strings.Join(key.Scopes, " ")},
		})
	})
	if err != nil {
		return storage.APIKey{}, "", err
	}
	return key, secret, nil
}

// ListAPIKeys lists every key (without secrets; only hashes are stored).
func (a *Authority) ListAPIKeys(ctx context.Context) ([]storage.APIKey, error) {
	var keys []storage.APIKey
	err := a.store.View(ctx, func(tx storage.ReadTx) error {
		keys = nil
		for k, err := range tx.APIKeys() {
			if err != nil {
				return err
			}
			keys = append(keys, k)
		}
		return nil
	})
	return keys, err
}

// RevokeAPIKey revokes a key; its next call is refused. It refuses, with
// ErrLastAdminKey, to revoke the last usable admin key (see
// checkNotLastAdmin).
func (a *Authority) RevokeAPIKey(ctx context.Context, actor Actor, id string) (storage.APIKey, error) {
	if err := checkID("api_key_id", id, true); err != nil {
		return storage.APIKey{}, err
	}
	now := a.now()
	var k storage.APIKey
	_, err := a.store.Update(ctx, func(tx storage.Tx) error {
		var err error
		if k, err = tx.APIKey(id); errors.Is(err, storage.ErrNotFound) {
			return notFound("API key", id)
		} else if err != nil {
			return err
		}
		if !k.RevokeTime.IsZero() {
			return fmt.Errorf("%w: API key %s is already revoked", ErrInvalidArgument, id)
		}
		if err := checkNotLastAdmin(tx, k, now); err != nil {
			return err
		}
		k.RevokeTime = now
		if err := tx.PutAPIKey(k); err != nil {
			return err
		}
		return tx.AppendAudit(storage.AuditRecord{
			ID: newID("aud_", now), Time: now, Action: "apikey.revoke", Actor: actor.Name, ActorAddr: actor.Addr, Channel: actor.Channel,
			TargetID: k.ID, Details: map[string]string{"name": k.Name},
		})
	})
	return k, err
}

// checkNotLastAdmin returns ErrLastAdminKey when k is a usable admin key
// and no other one is: revoking it would lock every operator out, and a
// restart would not help (the bootstrap key is only created in an empty
// store). It reads every API key in tx, the transaction that revokes k, so
// that two revocations racing (on one replica or several) cannot each see
// the other's key and both commit: bolt runs them one after the other, and
// etcd reruns an Update whose reads changed before its commit. There is
// no online way to force it (the API has no such field): create another
// admin key first, or use the offline RecoverAdminKey.
func checkNotLastAdmin(tx storage.ReadTx, k storage.APIKey, now time.Time) error {
	if !isUsableAdmin(k, now) {
		return nil
	}
	for other, err := range tx.APIKeys() {
		if err != nil {
			return err
		}
		if other.ID != k.ID && isUsableAdmin(other, now) {
			return nil
		}
	}
	return fmt.Errorf("%w: API key %s (%q) is the last unrevoked, unexpired key with scope admin; "+
		"create another admin key first (portcullis apikeys create NAME --scope admin), then revoke this one", ErrLastAdminKey, k.ID, k.Name)
}
