package receiver_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/receiver"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
)

// TestAddRefusesBadSettings: settings that cannot work are refused with
// the field at fault, before any fetch: push without a usable public URL
// (serve computes "http://" from an empty --http-listen), a config URL
// that is not https off loopback, an unknown delivery, no tenant.
func TestAddRefusesBadSettings(t *testing.T) {
	store, err := bolt.Open(filepath.Join(t.TempDir(), "p.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	auth := authority.New(store, authority.Config{})
	for _, c := range []struct {
		name, publicURL, field string
		s                      receiver.Settings
	}{
		{"push, no public URL", "", "delivery", receiver.Settings{ConfigURL: "https://tx.example", TenantID: "acme"}},
		{"push, public URL without host", "http://", "delivery", receiver.Settings{ConfigURL: "https://tx.example", TenantID: "acme"}},
		{"http off loopback", "https://me.example", "config_url", receiver.Settings{ConfigURL: "http://tx.example", TenantID: "acme"}},
		{"unknown delivery", "https://me.example", "delivery", receiver.Settings{ConfigURL: "https://tx.example", TenantID: "acme", Delivery: "carrier-pigeon"}},
		{"no tenant", "https://me.example", "tenant_id", receiver.Settings{ConfigURL: "https://tx.example", Delivery: "poll"}},
		{"no config URL", "https://me.example", "config_url", receiver.Settings{TenantID: "acme", Delivery: "poll"}},
	} {
		r := receiver.New(auth, receiver.Config{PublicURL: c.publicURL})
		_, err := r.Add(context.Background(), authority.System, c.s)
		var fe *authority.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: %v, want a FieldError on %s", c.name, err, c.field)
		}
	}
}
