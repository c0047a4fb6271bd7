package ssf

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	now     = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	edPub   ed25519.PublicKey
	edPriv  ed25519.PrivateKey
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func init() {
	var err error
	edPub, edPriv, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
}

func testRSA(t testing.TB) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		rsaKey = k
	})
	return rsaKey
}

func sampleSET() SET {
	ev, _ := Event(SessionRevoked{CAEPCommon{EventTimestamp: now.Unix(), InitiatingEntity: InitiatingAdmin,
		ReasonAdmin: map[string]string{"en": "stolen laptop"}}})
	return SET{
		Issuer: "https://tx.example", Audience: []string{"https://rx.example"}, IssuedAt: now, JTI: "jti-1",
		SubjectID: &Subject{Format: FormatComplex, User: IssSub("https://idp.example", "alice"), Session: Opaque("s1")},
		Events:    map[string]json.RawMessage{EventSessionRevoked: ev},
	}
}

func opts(keys map[string]crypto.PublicKey, algs map[string][]string) VerifyOptions {
	return VerifyOptions{
		Issuer: "https://tx.example", Audience: "https://rx.example", Now: now,
		MaxAge: time.Hour, MaxSkew: time.Minute,
		Key: func(kid string) (crypto.PublicKey, []string, bool) {
			k, ok := keys[kid]
			return k, algs[kid], ok
		},
	}
}

func edOpts() VerifyOptions {
	return opts(map[string]crypto.PublicKey{"ed": edPub}, map[string][]string{"ed": {AlgEdDSA}})
}

func mustSign(t testing.TB, set SET, kid, alg string, key crypto.Signer) string {
	t.Helper()
	raw, err := Sign(set, kid, alg, key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestSignVerifyRoundTrip(t *testing.T) {
	rk := testRSA(t)
	for _, c := range []struct {
		alg string
		key crypto.Signer
		pub crypto.PublicKey
	}{{AlgEdDSA, edPriv, edPub}, {AlgRS256, rk, &rk.PublicKey}} {
		t.Run(c.alg, func(t *testing.T) {
			want := sampleSET()
			raw := mustSign(t, want, "k1", c.alg, c.key)
			hb, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
			var h map[string]string
			if err := json.Unmarshal(hb, &h); err != nil || h["typ"] != TokenType || h["alg"] != c.alg || h["kid"] != "k1" {
				t.Fatalf("header %s (%v)", hb, err)
			}
			got, err := Verify(raw, opts(map[string]crypto.PublicKey{"k1": c.pub}, map[string][]string{"k1": {c.alg}}))
			if err != nil {
				t.Fatal(err)
			}
			if got.Issuer != want.Issuer || got.JTI != want.JTI || !got.IssuedAt.Equal(want.IssuedAt) ||
				len(got.Audience) != 1 || got.Audience[0] != want.Audience[0] || got.SubjectID.Key() != want.SubjectID.Key() {
				t.Fatalf("got %+v, want %+v", got, want)
			}
			var ev SessionRevoked
			if err := json.Unmarshal(got.Events[EventSessionRevoked], &ev); err != nil || ev.ReasonAdmin["en"] != "stolen laptop" || ev.InitiatingEntity != InitiatingAdmin {
				t.Fatalf("event %+v (%v)", ev, err)
			}
		})
	}
}

// forge builds a compact JWS from a raw header and payload, signed by
// Ed25519 key priv (or with an empty signature when priv is nil).
func forge(header, payload string, priv ed25519.PrivateKey) string {
	in := b64([]byte(header)) + "." + b64([]byte(payload))
	if priv == nil {
		return in + "."
	}
	return in + "." + b64(ed25519.Sign(priv, []byte(in)))
}

func claims(mut func(m map[string]any)) string {
	m := map[string]any{
		"iss": "https://tx.example", "aud": "https://rx.example", "iat": now.Unix(), "jti": "j1",
		"events": map[string]any{EventAccountEnabled: map[string]any{}},
	}
	mut(m)
	b, _ := json.Marshal(m)
	return string(b)
}

func TestVerifyRefuses(t *testing.T) {
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	rk := testRSA(t)
	hdr := `{"alg":"EdDSA","typ":"secevent+jwt","kid":"ed"}`
	ok := claims(func(map[string]any) {})
	withAlgs := func(algs ...string) VerifyOptions {
		return opts(map[string]crypto.PublicKey{"ed": edPub}, map[string][]string{"ed": algs})
	}
	cases := []struct {
		name, raw, code string
		o               VerifyOptions
	}{
		{"unsigned alg none", forge(`{"alg":"none","typ":"secevent+jwt","kid":"ed"}`, ok, nil), CodeInvalidRequest, edOpts()},
		{"wrong key", forge(hdr, ok, otherPriv), CodeInvalidKey, edOpts()},
		{"unknown kid", forge(`{"alg":"EdDSA","kid":"nope"}`, ok, edPriv), CodeInvalidKey, edOpts()},
		{"alg not bound to the key", forge(hdr, ok, edPriv), CodeInvalidKey, withAlgs(AlgRS256)},
		{"RS256 header over an Ed25519 key", mustSign(t, sampleSET(), "ed", AlgRS256, rk), CodeInvalidKey, withAlgs(AlgEdDSA, AlgRS256)},
		{"wrong iss", forge(hdr, claims(func(m map[string]any) { m["iss"] = "https://evil.example" }), edPriv), CodeInvalidIssuer, edOpts()},
		{"wrong aud string", forge(hdr, claims(func(m map[string]any) { m["aud"] = "https://other.example" }), edPriv), CodeInvalidAudience, edOpts()},
		{"wrong aud array", forge(hdr, claims(func(m map[string]any) { m["aud"] = []string{"a", "b"} }), edPriv), CodeInvalidAudience, edOpts()},
		{"missing aud", forge(hdr, claims(func(m map[string]any) { delete(m, "aud") }), edPriv), CodeInvalidAudience, edOpts()},
		{"iat too old", forge(hdr, claims(func(m map[string]any) { m["iat"] = now.Add(-2 * time.Hour).Unix() }), edPriv), CodeInvalidRequest, edOpts()},
		{"iat in the future", forge(hdr, claims(func(m map[string]any) { m["iat"] = now.Add(2 * time.Minute).Unix() }), edPriv), CodeInvalidRequest, edOpts()},
		{"missing iat", forge(hdr, claims(func(m map[string]any) { delete(m, "iat") }), edPriv), CodeInvalidRequest, edOpts()},
		{"missing jti", forge(hdr, claims(func(m map[string]any) { delete(m, "jti") }), edPriv), CodeInvalidRequest, edOpts()},
		{"missing events", forge(hdr, claims(func(m map[string]any) { delete(m, "events") }), edPriv), CodeInvalidRequest, edOpts()},
		{"empty events", forge(hdr, claims(func(m map[string]any) { m["events"] = map[string]any{} }), edPriv), CodeInvalidRequest, edOpts()},
		{"event not an object", forge(hdr, claims(func(m map[string]any) { m["events"] = map[string]any{EventAccountEnabled: 1} }), edPriv), CodeInvalidRequest, edOpts()},
		{"invalid sub_id", forge(hdr, claims(func(m map[string]any) { m["sub_id"] = map[string]any{"format": "email"} }), edPriv), CodeInvalidRequest, edOpts()},
		{"malformed JSON payload", forge(hdr, `{"iss":`, edPriv), CodeInvalidRequest, edOpts()},
		{"malformed JSON header", forge(`{"alg"`, ok, edPriv), CodeInvalidRequest, edOpts()},
		{"malformed base64", "%%%." + b64([]byte(ok)) + ".AAAA", CodeInvalidRequest, edOpts()},
		{"malformed signature base64", forge(hdr, ok, nil) + "!!", CodeInvalidRequest, edOpts()},
		{"two parts", b64([]byte(hdr)) + "." + b64([]byte(ok)), CodeInvalidRequest, edOpts()},
		{"typ JWT", forge(`{"alg":"EdDSA","typ":"JWT","kid":"ed"}`, ok, edPriv), CodeInvalidRequest, edOpts()},
		{"crit header", forge(`{"alg":"EdDSA","kid":"ed","crit":["exp"]}`, ok, edPriv), CodeInvalidRequest, edOpts()},
		{"too large", strings.Repeat("a", MaxTokenSize+1), CodeInvalidRequest, edOpts()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Verify(c.raw, c.o)
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify accepted it or failed without a VerifyError: %v", err)
			}
			if ve.Code != c.code {
				t.Fatalf("code %s (%s), want %s", ve.Code, ve.Msg, c.code)
			}
		})
	}
}

func TestVerifyAccepts(t *testing.T) {
	for name, raw := range map[string]string{
		"absent typ":                forge(`{"alg":"EdDSA","kid":"ed"}`, claims(func(map[string]any) {}), edPriv),
		"application/ typ":          forge(`{"alg":"EdDSA","kid":"ed","typ":"application/secevent+jwt"}`, claims(func(map[string]any) {}), edPriv),
		"aud array containing ours": forge(`{"alg":"EdDSA","kid":"ed"}`, claims(func(m map[string]any) { m["aud"] = []string{"x", "https://rx.example"} }), edPriv),
		"fractional iat":            forge(`{"alg":"EdDSA","kid":"ed"}`, claims(func(m map[string]any) { m["iat"] = float64(now.Unix()) + 0.5 }), edPriv),
		"iat at the edge of MaxAge": forge(`{"alg":"EdDSA","kid":"ed"}`, claims(func(m map[string]any) { m["iat"] = now.Add(-time.Hour).Unix() }), edPriv),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Verify(raw, edOpts()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSignRefusesMismatchedAlg(t *testing.T) {
	if _, err := Sign(sampleSET(), "k", AlgRS256, edPriv); err == nil {
		t.Fatal("Sign RS256 with an Ed25519 key")
	}
	if _, err := Sign(sampleSET(), "k", AlgEdDSA, testRSA(t)); err == nil {
		t.Fatal("Sign EdDSA with an RSA key")
	}
	set := sampleSET()
	set.JTI = ""
	if _, err := Sign(set, "k", AlgEdDSA, edPriv); err == nil {
		t.Fatal("Sign without jti")
	}
}

// FuzzVerify: Verify never panics, and whatever it accepts is signed by the
// key under the exact signing input it was given.
func FuzzVerify(f *testing.F) {
	good := mustSign(f, sampleSET(), "ed", AlgEdDSA, edPriv)
	f.Add(good)
	f.Add(forge(`{"alg":"none"}`, claims(func(map[string]any) {}), nil))
	f.Add(forge(`{"alg":"EdDSA","kid":"ed"}`, `{"iss":"https://tx.example","aud":["https://rx.example"],"iat":1e9}`, edPriv))
	f.Add("..")
	f.Add("")
	o := edOpts()
	f.Fuzz(func(t *testing.T, raw string) {
		set, err := Verify(raw, o)
		if err != nil {
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.Code == "" {
				t.Fatalf("error %v is not a VerifyError with a code", err)
			}
			return
		}
		parts := strings.Split(strings.TrimSpace(raw), ".")
		sig, derr := base64.RawURLEncoding.DecodeString(parts[2])
		if derr != nil || !ed25519.Verify(edPub, []byte(parts[0]+"."+parts[1]), sig) {
			t.Fatalf("accepted a token not signed by the key: %q", raw)
		}
		if set.JTI == "" || len(set.Events) == 0 || set.Issuer != o.Issuer {
			t.Fatalf("accepted claims that break the rules: %+v", set)
		}
	})
}
