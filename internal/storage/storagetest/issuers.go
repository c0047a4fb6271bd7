package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

func normIssuer(i storage.Issuer) storage.Issuer {
	for _, t := range []*time.Time{&i.CreateTime, &i.UpdateTime, &i.LastSuccessTime, &i.LastErrorTime, &i.NextFetchTime} {
		normTime(t)
	}
	i.Audiences = normStrings(i.Audiences)
	i.Algorithms = normStrings(i.Algorithms)
	if len(i.Keys) == 0 {
		i.Keys = nil
	}
	for k := range i.Keys {
		i.Keys[k].Algorithms = normStrings(i.Keys[k].Algorithms)
		i.Keys[k].PublicKey = normBytes(i.Keys[k].PublicKey)
	}
	return i
}

func issuerURL(i storage.Issuer) string { return i.URL }

// testIssuers: external issuers are stored by URL (any bytes a URL has,
// "/" included), listed in URL order, replaced in place, deleted
// idempotently, and carried by events whole.
func testIssuers(t *testing.T, newStore func(*testing.T) storage.Store) {
	s := newStore(t)
	// An empty store (a bolt file from before issuers existed has no
	// bucket for them) has none.
	view(t, s, func(tx storage.ReadTx) error {
		if _, err := tx.Issuer("https://idp.example"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Issuer on an empty store: %v, want ErrNotFound", err)
		}
		got, err := collect(tx.Issuers())
		if err != nil || len(got) != 0 {
			t.Errorf("Issuers on an empty store: %v, %v", got, err)
		}
		return nil
	})
	a := storage.Issuer{
		URL: "https://idp.example/realms/b", TenantID: "acme", Audiences: []string{"api", "web"},
		UserClaim: "sub", SessionClaim: "sid", Algorithms: []string{"RS256", "ES256"},
		Leeway: time.Minute, MaxTokenLifetime: 24 * time.Hour,
		CreateTime: at(0), UpdateTime: at(time.Minute), CreatedBy: "admin",
		JWKSURI:         "https://idp.example/realms/b/certs",
		Keys:            []storage.IssuerKey{{ID: "k1", Algorithms: []string{"RS256"}, PublicKey: []byte{0x30, 0x00, 0xff}}},
		LastSuccessTime: at(time.Minute), NextFetchTime: at(time.Hour),
	}
	b := a
	b.URL, b.TenantID, b.Keys = "https://idp.example/realms/a", "other", nil
	c := a
	c.URL = "http://127.0.0.1:8080"
	rev := update(t, s, func(tx storage.Tx) error {
		for _, i := range []storage.Issuer{a, b, c} {
			if err := tx.PutIssuer(i); err != nil {
				return err
			}
		}
		return tx.Emit(storage.Event{Kind: storage.EventIssuerUpdated, Time: at(0), Issuer: &a})
	})
	list := func() []storage.Issuer {
		var got []storage.Issuer
		view(t, s, func(tx storage.ReadTx) error {
			var err error
			got, err = collect(tx.Issuers())
			return err
		})
		return got
	}
	sameList(t, "Issuers()", list(), []storage.Issuer{c, b, a}, normIssuer, issuerURL)
	view(t, s, func(tx storage.ReadTx) error {
		got, err := tx.Issuer(a.URL)
		if err != nil {
			t.Fatalf("Issuer(%s): %v", a.URL, err)
		}
		same(t, "Issuer", got, a, normIssuer)
		return nil
	})
	w := watch(t, s, rev-1)
	ch := next(t, w)
	if len(ch.Events) != 1 || ch.Events[0].Kind != storage.EventIssuerUpdated || ch.Events[0].Issuer == nil {
		t.Fatalf("issuer event: %s", show(ch))
	}
	same(t, "event's issuer", *ch.Events[0].Issuer, a, normIssuer)

	// Replace one (a failed fetch), delete another (twice: idempotent).
	a2 := a
	a2.LastError, a2.LastErrorTime = "jwks: connection refused", at(2*time.Hour)
	update(t, s, func(tx storage.Tx) error {
		if err := tx.PutIssuer(a2); err != nil {
			return err
		}
		if err := tx.DeleteIssuer(b.URL); err != nil {
			return err
		}
		return tx.DeleteIssuer(b.URL)
	})
	sameList(t, "Issuers() after replace and delete", list(), []storage.Issuer{c, a2}, normIssuer, issuerURL)
	view(t, s, func(tx storage.ReadTx) error {
		if _, err := tx.Issuer(b.URL); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("deleted Issuer: %v, want ErrNotFound", err)
		}
		return nil
	})
	// An issuer without a URL is refused.
	if _, err := s.Update(t.Context(), func(tx storage.Tx) error { return tx.PutIssuer(storage.Issuer{TenantID: "x"}) }); !errors.Is(err, storage.ErrInvalidRecord) {
		t.Errorf("PutIssuer without URL: %v, want ErrInvalidRecord", err)
	}
}

func normRevocation(r storage.ExternalRevocation) storage.ExternalRevocation {
	normTime(&r.RevokeTime)
	normTime(&r.KeepUntil)
	return r
}

func revocationKey(r storage.ExternalRevocation) string { return r.Key() }

// testExternalRevocations: revocations of external sessions and tokens
// are keyed by issuer, kind and value (a sid and a jti of the same value
// are two records), listed by key, carried by events, deleted
// idempotently; a revocation naming both or neither is refused.
func testExternalRevocations(t *testing.T, newStore func(*testing.T) storage.Store) {
	s := newStore(t)
	view(t, s, func(tx storage.ReadTx) error {
		if _, err := tx.ExternalRevocation(storage.ExternalRevocationKey("https://idp.example", "s1", "")); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("ExternalRevocation on an empty store: %v, want ErrNotFound", err)
		}
		got, err := collect(tx.ExternalRevocations())
		if err != nil || len(got) != 0 {
			t.Errorf("ExternalRevocations on an empty store: %v, %v", got, err)
		}
		return nil
	})
	sid := storage.ExternalRevocation{Issuer: "https://idp.example/r", SessionID: "x1", TenantID: "acme",
		RevokeTime: at(0), KeepUntil: at(24 * time.Hour), Reason: "stolen laptop", RevokedBy: "admin"}
	jti := sid
	jti.SessionID, jti.TokenID = "", "x1"
	other := sid
	other.Issuer = "https://idp.example/a"
	rev := update(t, s, func(tx storage.Tx) error {
		for _, r := range []storage.ExternalRevocation{sid, jti, other} {
			if err := tx.PutExternalRevocation(r); err != nil {
				return err
			}
		}
		return tx.Emit(storage.Event{Kind: storage.EventExternalRevoked, Time: at(0), Revocation: &jti})
	})
	list := func() []storage.ExternalRevocation {
		var got []storage.ExternalRevocation
		view(t, s, func(tx storage.ReadTx) error {
			var err error
			got, err = collect(tx.ExternalRevocations())
			return err
		})
		return got
	}
	sameList(t, "ExternalRevocations()", list(), []storage.ExternalRevocation{other, jti, sid}, normRevocation, revocationKey)
	view(t, s, func(tx storage.ReadTx) error {
		got, err := tx.ExternalRevocation(storage.ExternalRevocationKey(jti.Issuer, "", "x1"))
		if err != nil {
			t.Fatalf("ExternalRevocation(jti): %v", err)
		}
		same(t, "ExternalRevocation(jti)", got, jti, normRevocation)
		return nil
	})
	w := watch(t, s, rev-1)
	ch := next(t, w)
	if len(ch.Events) != 1 || ch.Events[0].Kind != storage.EventExternalRevoked || ch.Events[0].Revocation == nil {
		t.Fatalf("revocation event: %s", show(ch))
	}
	same(t, "event's revocation", *ch.Events[0].Revocation, jti, normRevocation)
	update(t, s, func(tx storage.Tx) error {
		if err := tx.DeleteExternalRevocation(sid.Key()); err != nil {
			return err
		}
		return tx.DeleteExternalRevocation(sid.Key())
	})
	sameList(t, "ExternalRevocations() after delete", list(), []storage.ExternalRevocation{other, jti}, normRevocation, revocationKey)
	both := sid
	both.TokenID = "t"
	for name, r := range map[string]storage.ExternalRevocation{"both": both, "neither": {Issuer: "https://idp.example"}} {
		if _, err := s.Update(t.Context(), func(tx storage.Tx) error { return tx.PutExternalRevocation(r) }); !errors.Is(err, storage.ErrInvalidRecord) {
			t.Errorf("PutExternalRevocation naming %s: %v, want ErrInvalidRecord", name, err)
		}
	}
}
