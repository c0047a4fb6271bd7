package authority_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/authoritytest/testidp"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt/bolttest"
)

func newIssuerAuthority(t *testing.T) (*authority.Authority, *clock) {
	c := &clock{now: time.Now().UTC().Truncate(time.Second)}
	return authority.New(bolttest.Open(t, bolt.Options{}), authority.Config{Clock: c.Now}), c
}

// TestIssuerFetchLimits: the fetcher refuses what an attacker on the
// path or a broken IdP could serve: a redirect to another host, a
// document over 1 MiB, a discovery document naming another issuer, a
// JWKS with only an HMAC key. Each refuses CreateIssuer on the issuer
// field. (The OP here is a narrow fake: what a real one never serves.)
func TestIssuerFetchLimits(t *testing.T) {
	var issuer string
	var jwks func(w http.ResponseWriter, r *http.Request)
	var discoveryIssuer func() string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]string{"issuer": discoveryIssuer(), "jwks_uri": issuer + "/keys"})
		case "/keys":
			jwks(w, r)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	issuer = srv.URL
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"keys":[]}`)
	}))
	defer other.Close()
	for name, c := range map[string]struct {
		jwks      func(w http.ResponseWriter, r *http.Request)
		discovery func() string
		want      string
	}{
		"redirect to another host": {func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+"/keys", http.StatusFound)
		}, nil, "redirect to another host"},
		"over 1 MiB": {func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"keys":[],"pad":"`+strings.Repeat("x", 1<<20)+`"}`)
		}, nil, "larger than"},
		"another issuer": {nil, func() string { return "https://evil.example" }, "names issuer"},
		"HMAC key only": {func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0","alg":"HS256"}]}`)
		}, nil, "no usable signing key"},
	} {
		t.Run(name, func(t *testing.T) {
			a, _ := newIssuerAuthority(t)
			jwks, discoveryIssuer = c.jwks, c.discovery
			if discoveryIssuer == nil {
				discoveryIssuer = func() string { return issuer }
			}
			_, err := a.CreateIssuer(t.Context(), authority.System, authority.IssuerSettings{URL: issuer, TenantID: "acme", Audiences: []string{"api"}})
			var fe *authority.FieldError
			if !errors.As(err, &fe) || fe.Field != "issuer" || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("CreateIssuer: %v, want a refusal on issuer mentioning %q", err, c.want)
			}
		})
	}
}

// TestIssuerRefetchAndSweep: the fetcher refetches when the keys' time
// has come, or when a token names an unknown kid, at most once a minute;
// an external revocation is swept once the issuer's max token lifetime
// has passed.
func TestIssuerRefetchAndSweep(t *testing.T) {
	idp := testidp.Start(t)
	a, c := newIssuerAuthority(t)
	ctx := t.Context()
	if _, err := a.CreateIssuer(ctx, authority.System, authority.IssuerSettings{URL: idp.URL, TenantID: "acme",
		Audiences: []string{testidp.ClientID}, MaxTokenLifetime: time.Hour}); err != nil {
		t.Fatalf("CreateIssuer: %v", err)
	}
	fetches := func() uint64 { return a.IssuerFetchStats()[idp.URL].Successes }
	a.RefreshDueIssuers(ctx)
	if n := fetches(); n != 0 {
		t.Fatalf("fetched %d times before the keys' time", n)
	}
	a.IssuerKeyMissing(idp.URL)
	a.RefreshDueIssuers(ctx)
	a.IssuerKeyMissing(idp.URL) // within the minute: ignored
	a.RefreshDueIssuers(ctx)
	if n := fetches(); n != 1 {
		t.Fatalf("unknown kid twice within a minute: %d fetches, want 1", n)
	}
	c.Advance(61 * time.Second)
	a.IssuerKeyMissing(idp.URL)
	a.RefreshDueIssuers(ctx)
	if n := fetches(); n != 2 {
		t.Fatalf("unknown kid a minute later: %d fetches, want 2", n)
	}
	c.Advance(16 * time.Minute) // past the default max-age
	a.RefreshDueIssuers(ctx)
	if n := fetches(); n != 3 {
		t.Fatalf("after max-age: %d fetches, want 3", n)
	}

	r, _, err := a.RevokeExternal(ctx, authority.System, idp.URL, "s1", "", "test")
	if err != nil {
		t.Fatalf("RevokeExternal: %v", err)
	}
	if want := r.RevokeTime.Add(time.Hour + authority.DefaultIssuerLeeway); !r.KeepUntil.Equal(want) {
		t.Fatalf("KeepUntil %s, want %s", r.KeepUntil, want)
	}
	count := func() int {
		n := 0
		a.View(ctx, func(tx storage.ReadTx) error {
			n = 0
			for _, err := range tx.ExternalRevocations() {
				if err != nil {
					return err
				}
				n++
			}
			return nil
		})
		return n
	}
	c.Advance(time.Hour)
	a.RefreshDueIssuers(ctx)
	if n := count(); n != 1 {
		t.Fatalf("%d revocations before their time, want 1", n)
	}
	c.Advance(time.Minute)
	a.RefreshDueIssuers(ctx)
	if n := count(); n != 0 {
		t.Fatalf("%d revocations after the max token lifetime, want 0", n)
	}
}
