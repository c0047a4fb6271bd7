package storagetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

func testAPIKeys(t *testing.T, s storage.Store) {
	keys := []storage.APIKey{
		{ID: "key_03", Name: "billing", SecretHash: []byte{0x00, 0x01, 0xfe}, Scopes: []string{"bans:read"}, CreateTime: at(0), CreatedBy: "bootstrap-admin"},
		{ID: "key_01", Name: "bootstrap-admin", SecretHash: []byte("h1"), Scopes: []string{"admin"}, CreateTime: at(0)},
		{ID: "key_02", Name: "chat", SecretHash: []byte("h2"), Scopes: []string{"sessions:write", "events:watch"}, CreateTime: at(time.Minute), ExpireTime: at(24 * time.Hour), CreatedBy: "bootstrap-admin"},
	}
	update(t, s, func(tx storage.Tx) error {
		for _, k := range keys {
			if err := tx.PutAPIKey(k); err != nil {
				return err
			}
		}
		return nil
	})
	want := slices.Clone(keys)
	slices.SortFunc(want, func(a, b storage.APIKey) int { return strings.Compare(a.ID, b.ID) })
	list := func() []storage.APIKey {
		var got []storage.APIKey
		view(t, s, func(tx storage.ReadTx) error {
			var err error
			got, err = collect(tx.APIKeys())
			return err
		})
		return got
	}
	sameList(t, "APIKeys()", list(), want, normAPIKey, apiKeyID)
	view(t, s, func(tx storage.ReadTx) error {
		for _, k := range keys {
			got, err := tx.APIKey(k.ID)
			if err != nil {
				t.Errorf("APIKey(%s): %v", k.ID, err)
				continue
			}
			same(t, "APIKey("+k.ID+")", got, k, normAPIKey)
		}
		return nil
	})
	// Revoke one: replaced in place.
	revoked := keys[2]
	revoked.RevokeTime = at(2 * time.Hour)
	update(t, s, func(tx storage.Tx) error { return tx.PutAPIKey(revoked) })
	want[1] = revoked
	sameList(t, "APIKeys() after revoke", list(), want, normAPIKey, apiKeyID)
}

func testSigningKeys(t *testing.T, s storage.Store) {
	keys := []storage.SigningKey{
		newSigningKey("kid_2", at(time.Hour)),
		newSigningKey("kid_1", at(0)),
		newSigningKey("kid_3", at(2*time.Hour)),
	}
	update(t, s, func(tx storage.Tx) error {
		for _, k := range keys {
			if err := tx.PutSigningKey(k); err != nil {
				return err
			}
		}
		return nil
	})
	list := func() []storage.SigningKey {
		var got []storage.SigningKey
		view(t, s, func(tx storage.ReadTx) error {
			var err error
			got, err = collect(tx.SigningKeys())
			return err
		})
		return got
	}
	sameList(t, "SigningKeys()", list(), []storage.SigningKey{keys[1], keys[0], keys[2]}, normSigningKey, signingKeyID)

	// Retire kid_2, delete kid_1 (no token it signed is still valid).
	retired := keys[0]
	retired.RetireTime = at(2 * time.Hour)
	retired.VerifyUntil = at(2*time.Hour + 15*time.Minute)
	update(t, s, func(tx storage.Tx) error {
		if err := tx.PutSigningKey(retired); err != nil {
			return err
		}
		return tx.DeleteSigningKey("kid_1")
	})
	sameList(t, "SigningKeys() after retire and delete", list(), []storage.SigningKey{retired, keys[2]}, normSigningKey, signingKeyID)
}
