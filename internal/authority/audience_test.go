package authority_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt/bolttest"
	"github.com/portcullis-dev/portcullis/token"
)

// TestAccessTokenAudience: access tokens carry the configured
// "aud" (default "portcullis"), and VerifySession refuses a token, signed
// by the same key and issuer, that names another audience.
func TestAccessTokenAudience(t *testing.T) {
	st := bolttest.Open(t, bolt.Options{})
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	// Two authorities over one store: the same keys, other audiences.
	def := authority.New(st, authority.Config{Clock: c.Now, Logger: log})
	api := authority.New(st, authority.Config{Clock: c.Now, Logger: log, Audience: "api.example"})
	if err := def.EnsureSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	login := func(a *authority.Authority) string {
		tok, err := a.CreateSession(ctx, authority.Actor{Name: "svc"}, authority.SessionInput{UserID: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	defTok, apiTok := login(def), login(api)

	for _, tc := range []struct{ tok, aud string }{{defTok, authority.DefaultAudience}, {apiTok, "api.example"}} {
		payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tc.tok, ".")[1])
		if err != nil {
			t.Fatal(err)
		}
		var claims token.Claims
		if err := json.Unmarshal(payload, &claims); err != nil {
			t.Fatal(err)
		}
		if len(claims.Audience) != 1 || claims.Audience[0] != tc.aud || claims.Issuer != authority.DefaultIssuer {
			t.Errorf("token claims %s: want aud %q, iss %q", payload, tc.aud, authority.DefaultIssuer)
		}
	}
	if _, _, err := def.VerifySession(ctx, authority.VerifyInput{AccessToken: defTok}); err != nil {
		t.Fatalf("default audience, own token: %v", err)
	}
	if _, _, err := api.VerifySession(ctx, authority.VerifyInput{AccessToken: apiTok}); err != nil {
		t.Fatalf("api.example, own token: %v", err)
	}
	for name, verify := range map[string]func() error{
		"default audience, api.example's token": func() error {
			_, _, err := def.VerifySession(ctx, authority.VerifyInput{AccessToken: apiTok})
			return err
		},
		"api.example, default audience's token": func() error {
			_, _, err := api.VerifySession(ctx, authority.VerifyInput{AccessToken: defTok})
			return err
		},
	} {
		if err := verify(); !errors.Is(err, authority.ErrTokenInvalid) {
			t.Errorf("%s: %v, want ErrTokenInvalid for the audience", name, err)
		}
	}
}
