package authority

import (
	"context"
	"fmt"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// Recovery is the actor of RecoverAdminKey: someone with direct access to
// the store, not a caller of the API (there is none: no key to call with).
var Recovery = Actor{Name: "offline-recovery", Addr: "local"}

// RecoverAdminKeyName is the name RecoverAdminKey gives the key when the
// operator names none, followed by the time of the recovery (names of
// unrevoked keys are unique, and one recovery may follow another).
const RecoverAdminKeyName = "recovered-admin-"

// RecoverAdminKey creates an API key with scope admin straight in the
// store, for an operator who has lost every admin key (revoked, expired,
// or its secret lost) and so cannot call CreateAPIKey: the way back that
// the bootstrap key does not give, as it is only created in an empty
// store. It is meant for `portcullis recover-admin` on a stopped
// authority's store (a bbolt file is locked while an authority holds it);
// whoever can write the store can do anything anyway, so it asks for no
// credential. It is audited as "apikey.recover" by Recovery. name "" is
// RecoverAdminKeyName and the time. It refuses a store that holds no API
// key at all (ErrNotFound): such a store was never started, and `serve`
// creates the bootstrap key in it; most likely the path or prefix is
// wrong.
func (a *Authority) RecoverAdminKey(ctx context.Context, name, reason string) (storage.APIKey, string, error) {
	now := a.now()
	if name == "" {
		name = RecoverAdminKeyName + now.Format("20060102-150405")
	}
	if err := checkName("name", name); err != nil {
		return storage.APIKey{}, "", err
	}
	if err := checkText("reason", reason); err != nil {
		return storage.APIKey{}, "", err
	}
	key, secret := newAPIKey(name, []string{ScopeAdmin}, time.Time{}, now, Recovery.Name)
	_, err := a.store.Update(ctx, func(tx storage.Tx) error {
		found := false
		for k, err := range tx.APIKeys() {
			if err != nil {
				return err
			}
			found = true
			if k.Name == name && k.RevokeTime.IsZero() {
				return invalid("name", "an API key named %q exists; revoke it or choose another name", name)
			}
		}
		if !found {
			return fmt.Errorf("%w: the store holds no API key, so no authority ever started on it "+
				"(serve creates the bootstrap admin key in an empty store); check the store's path or prefix", ErrNotFound)
		}
		if err := tx.PutAPIKey(key); err != nil {
			return err
		}
		return tx.AppendAudit(storage.AuditRecord{
			ID: newID("aud_", now), Time: now, Action: "apikey.recover", Actor: Recovery.Name, ActorAddr: Recovery.Addr, Channel: Recovery.Channel,
			TargetID: key.ID, Reason: reason, Details: map[string]string{"name": name, "scopes": ScopeAdmin},
		})
	})
	if err != nil {
		return storage.APIKey{}, "", err
	}
	return key, secret, nil
}
