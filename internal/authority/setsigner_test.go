package authority_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

func revisionOf(t *testing.T, st storage.Store) int64 {
	t.Helper()
	var rev int64
	if err := st.View(context.Background(), func(tx storage.ReadTx) error { rev = tx.Revision(); return nil }); err != nil {
		t.Fatal(err)
	}
	return rev
}

func signingKeys(t *testing.T, st storage.Store) []storage.SigningKey {
	t.Helper()
	var out []storage.SigningKey
	err := st.View(context.Background(), func(tx storage.ReadTx) error {
		out = out[:0]
		for k, err := range tx.SigningKeys() {
			if err != nil {
				return err
			}
			out = append(out, k)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSETSignerRS256 checks, on bbolt and etcd, that concurrent first uses
// on two authorities over one store (two replicas) make one RSA key, that
// it emits no event, survives rotations and is listed after the token keys.
func TestSETSignerRS256(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) { testSETSignerRS256(t, open(t)) })
	}
}

func testSETSignerRS256(t *testing.T, st storage.Store) {
	ctx := context.Background()
	clk := &clock{now: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	cfg := authority.Config{Clock: clk.Now}
	replicas := []*authority.Authority{authority.New(st, cfg), authority.New(st, cfg)}
	if err := replicas[0].EnsureSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	rev0 := revisionOf(t, st)

	var wg sync.WaitGroup
	kids := make([]string, 8)
	errs := make([]error, 8)
	for i := range kids {
		wg.Go(func() {
			kids[i], _, errs[i] = replicas[i%2].SETSigner(ctx, "RS256")
		})
	}
	wg.Wait()
	for i := range kids {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if kids[i] != kids[0] {
			t.Fatalf("concurrent first uses got kids %v", kids)
		}
	}
	var rsaKeys []storage.SigningKey
	for _, k := range signingKeys(t, st) {
		if k.Algorithm == "RS256" {
			rsaKeys = append(rsaKeys, k)
		}
	}
	if len(rsaKeys) != 1 || rsaKeys[0].ID != kids[0] {
		t.Fatalf("RS256 keys in the store: %+v, want one %s", rsaKeys, kids[0])
	}
	if rev := revisionOf(t, st); rev != rev0 {
		t.Fatalf("creating the SET key moved the event log from %d to %d: it must emit no event", rev0, rev)
	}
	priv, err := x509.ParsePKCS8PrivateKey(rsaKeys[0].PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(rsaKeys[0].PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if rk := priv.(*rsa.PrivateKey); rk.N.BitLen() != 2048 || !rk.PublicKey.Equal(pub) {
		t.Fatalf("stored key: %d bits, public matches %v", rk.N.BitLen(), rk.PublicKey.Equal(pub))
	}
	_, signer, err := replicas[1].SETSigner(ctx, "RS256")
	if err != nil || !signer.Public().(*rsa.PublicKey).Equal(pub) {
		t.Fatalf("signer %v does not hold the stored key (%v)", signer, err)
	}

	// EdDSA: the current token key, whatever the RSA key.
	kid, ed, err := replicas[0].SETSigner(ctx, "EdDSA")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := replicas[0].ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if keys[0].ID != kid || keys[0].Algorithm != "EdDSA" || !bytes.Equal(ed.Public().(ed25519.PublicKey), keys[0].PublicKey) {
		t.Fatalf("EdDSA signer %s is not the current token key %+v", kid, keys[0])
	}

	// Rotations (well past the access-token lifetime, so that retired
	// keys are deleted) never rotate, retire or delete the RSA key, and
	// the RSA key never becomes the token key.
	for range 3 {
		added, _, err := replicas[0].RotateKey(ctx, authority.System, "", "test")
		if err != nil {
			t.Fatal(err)
		}
		if added.Algorithm != "EdDSA" {
			t.Fatalf("rotation added %+v", added)
		}
		clk.Advance(time.Hour)
	}
	keys, err = replicas[0].ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := keys[len(keys)-1]
	if last.ID != kids[0] || last.Algorithm != "RS256" || len(last.PrivateKey) != 0 || !last.RetireTime.IsZero() {
		t.Fatalf("ListKeys after rotations: %+v", keys)
	}
	for _, k := range keys[:len(keys)-1] {
		if k.Algorithm != "EdDSA" {
			t.Fatalf("ListKeys lists %+v among the token keys", k)
		}
	}
	if kid2, _, err := replicas[0].SETSigner(ctx, "RS256"); err != nil || kid2 != kids[0] {
		t.Fatalf("after rotations the RS256 signer is %s (%v), want %s", kid2, err, kids[0])
	}
	if _, _, err := replicas[0].SETSigner(ctx, "HS256"); !errors.Is(err, authority.ErrInvalidArgument) {
		t.Fatalf("SETSigner(HS256): %v, want ErrInvalidArgument", err)
	}
}

// TestRotateSETKey checks, on bbolt and etcd, the rotation of the RS256
// SET key: the first makes one, each later one retires the current key,
// which stays published (ListKeys) for an hour and is deleted by a
// rotation after that; the SET signer follows the current key, the token
// key is untouched, and an unknown algorithm is refused.
func TestRotateSETKey(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			clk := &clock{now: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
			st := open(t)
			a := authority.New(st, authority.Config{Clock: clk.Now})
			if err := a.EnsureSigningKey(ctx); err != nil {
				t.Fatal(err)
			}
			tokenKid, _, err := a.SETSigner(ctx, "EdDSA")
			if err != nil {
				t.Fatal(err)
			}
			rsaKeys := func() []string {
				t.Helper()
				keys, err := a.ListKeys(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, k := range keys {
					if k.Algorithm == "RS256" {
						out = append(out, k.ID)
					}
				}
				if keys[0].ID != tokenKid {
					t.Fatalf("the token key changed: %+v", keys[0])
				}
				return out
			}
			first, retired, err := a.RotateKey(ctx, authority.System, "RS256", "first")
			if err != nil || first.Algorithm != "RS256" || retired.ID != "" || len(first.PrivateKey) != 0 {
				t.Fatalf("first rotation: %+v, retired %+v, %v", first, retired, err)
			}
			if kid, _, err := a.SETSigner(ctx, "RS256"); err != nil || kid != first.ID {
				t.Fatalf("signer %s (%v), want %s", kid, err, first.ID)
			}
			clk.Advance(time.Minute)
			second, retired, err := a.RotateKey(ctx, authority.System, "RS256", "scheduled")
			if err != nil || retired.ID != first.ID || !retired.VerifyUntil.Equal(clk.Now().Add(time.Hour)) {
				t.Fatalf("second rotation: retired %+v (%v), want %s until an hour from now", retired, err, first.ID)
			}
			kid, signer, err := a.SETSigner(ctx, "RS256")
			if err != nil || kid != second.ID {
				t.Fatalf("signer %s (%v), want %s", kid, err, second.ID)
			}
			pub, err := x509.ParsePKIXPublicKey(second.PublicKey)
			if err != nil || !signer.Public().(*rsa.PublicKey).Equal(pub) {
				t.Fatalf("the signer does not hold the new key (%v)", err)
			}
			if got := rsaKeys(); len(got) != 2 || got[0] != second.ID || got[1] != first.ID {
				t.Fatalf("published RS256 keys %v, want the new then the retired", got)
			}
			clk.Advance(time.Hour)
			if got := rsaKeys(); len(got) != 1 || got[0] != second.ID {
				t.Fatalf("an hour later, published RS256 keys %v, want the current alone", got)
			}
			third, _, err := a.RotateKey(ctx, authority.System, "RS256", "scheduled")
			if err != nil {
				t.Fatal(err)
			}
			var stored []string
			for _, k := range signingKeys(t, st) {
				if k.Algorithm == "RS256" {
					stored = append(stored, k.ID)
				}
			}
			if len(stored) != 2 || !slices.Contains(stored, second.ID) || !slices.Contains(stored, third.ID) {
				t.Fatalf("stored RS256 keys %v: want %s deleted, %s and %s kept", stored, first.ID, second.ID, third.ID)
			}
			if _, _, err := a.RotateKey(ctx, authority.System, "HS256", "no"); !errors.Is(err, authority.ErrInvalidArgument) {
				t.Fatalf("RotateKey(HS256): %v, want ErrInvalidArgument", err)
			}
		})
	}
}
