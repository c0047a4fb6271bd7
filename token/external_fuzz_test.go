package token_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis-dev/portcullis/token"
)

// externalFixture is an external issuer with an RSA key (RS256 only) and
// a P-256 key (ES256), and a token each key signed.
func externalFixture(tb testing.TB) (*token.ExternalIssuer, []string) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	is := &token.ExternalIssuer{Issuer: "https://idp.example", Audiences: []string{"api"}, Leeway: time.Minute,
		MaxLifetime: time.Hour, Keys: map[string]token.ExternalKey{}}
	for kid, k := range map[string]struct {
		pub  any
		algs []string
	}{"rsa": {&rk.PublicKey, []string{token.AlgRS256}}, "ec": {&ek.PublicKey, []string{token.AlgES256}}} {
		der, _ := x509.MarshalPKIXPublicKey(k.pub)
		pk, err := token.ParseExternalKey(der, k.algs)
		if err != nil {
			tb.Fatal(err)
		}
		is.Keys[kid] = pk
	}
	claims := jwt.MapClaims{"iss": is.Issuer, "sub": "alice", "sid": "s1", "jti": "t1", "aud": "api",
		"iat": extNow.Unix(), "exp": extNow.Add(30 * time.Minute).Unix()}
	var toks []string
	for _, c := range []struct {
		m   jwt.SigningMethod
		kid string
		key any
	}{{jwt.SigningMethodRS256, "rsa", rk}, {jwt.SigningMethodES256, "ec", ek}} {
		t := jwt.NewWithClaims(c.m, claims)
		t.Header["kid"] = c.kid
		s, err := t.SignedString(c.key)
		if err != nil {
			tb.Fatal(err)
		}
		toks = append(toks, s)
	}
	return is, toks
}

var extNow = time.Unix(1_900_000_000, 0)

// FuzzExternalForgery is FuzzForgery for external issuers' tokens: from a
// token each of an issuer's keys signed, the fuzzer splices bytes in or
// replaces the header or the claims. VerifyExternal must never panic, and
// may only accept the signed claims: an accepted token's claims must be
// those of the token it came from, and a header may not move a key to
// another algorithm (alg none, HS256 with the public key, RS256 on the EC
// key) or to another issuer.
func FuzzExternalForgery(f *testing.F) {
	is, toks := externalFixture(f)
	lookup := func(iss string) (*token.ExternalIssuer, bool) { return is, iss == is.Issuer }
	for i := range toks {
		f.Add(i, 0, "", "", "")
		f.Add(i, 7, "x", "", "")
		f.Add(i, 0, "", `{"alg":"none","kid":"rsa"}`, "")
		f.Add(i, 0, "", `{"alg":"HS256","kid":"rsa"}`, "")
		f.Add(i, 0, "", `{"alg":"RS256","kid":"ec"}`, "")
		f.Add(i, 0, "", `{"alg":"PS256","kid":"rsa"}`, "")
		f.Add(i, 0, "", "", `{"iss":"https://idp.example","sub":"root","aud":"api","exp":9999999999}`)
	}
	f.Fuzz(func(t *testing.T, which, at int, insert, header, claims string) {
		orig := toks[uint(which)%uint(len(toks))]
		want, err := token.VerifyExternal(orig, extNow, lookup)
		if err != nil {
			t.Fatalf("the original token: %v", err)
		}
		p := strings.Split(orig, ".")
		if header != "" {
			p[0] = enc(header)
		}
		if claims != "" {
			p[1] = enc(claims)
		}
		tok := strings.Join(p, ".")
		i := int(uint(at) % uint(len(tok)+1))
		tok = tok[:i] + insert + tok[i:]
		got, err := token.VerifyExternal(tok, extNow, lookup)
		if err != nil {
			return
		}
		if got.UserID != want.UserID || got.SessionID != want.SessionID || got.TokenID != want.TokenID ||
			!got.ExpireTime.Equal(want.ExpireTime) || string(got.Raw) != string(want.Raw) {
			t.Fatalf("forgery accepted: %q\n got:  %+v\n want: %+v", tok, got, want)
		}
	})
}

// TestExternalRefusals: the refusals VerifyExternal owes, each on one
// change to a valid token.
func TestExternalRefusals(t *testing.T) {
	is, toks := externalFixture(t)
	lookup := func(iss string) (*token.ExternalIssuer, bool) { return is, iss == is.Issuer }
	if _, err := token.VerifyExternal(toks[0], extNow, lookup); err != nil {
		t.Fatalf("valid: %v", err)
	}
	if _, err := token.VerifyExternal(toks[0], extNow.Add(31*time.Minute), lookup); err == nil {
		t.Error("accepted past exp + leeway")
	}
	if _, err := token.VerifyExternal(toks[0], extNow.Add(30*time.Minute+30*time.Second), lookup); err != nil {
		t.Errorf("refused within the leeway: %v", err)
	}
	none := func(string) (*token.ExternalIssuer, bool) { return nil, false }
	if _, err := token.VerifyExternal(toks[0], extNow, none); err == nil {
		t.Error("accepted an unknown issuer")
	}
}

// FuzzExternalClaims: the fast reader of external claims (extclaims.go)
// and encoding/json, which it stands in for, agree on every input: when
// the fast reader takes a payload, encoding/json decodes it without error
// to the same claims.
func FuzzExternalClaims(f *testing.F) {
	for _, s := range []string{
		`{"iss":"https://idp.example","sub":"alice","sid":"s1","jti":"t1","aud":["api","account"],"exp":1900000000,"iat":1899999000,"nbf":1899999000}`,
		`{"aud":"api","realm_access":{"roles":["a","b"]},"email_verified":true,"x":null,"n":-1.5e3,"s":"\u00e9\n"}`,
		`{"ISS":"x"}`, `{"iss":"a","iss":"b"}`, `{"exp":1.5}`, `{"exp":"1"}`, `{"aud":[]}`, `{"aud":null}`,
		`{"iss":"caf\u00e9"}`, `{"a":[[[[{}]]]]}`, `{"exp":01}`, `[]`, `{} x`, `{"a":tru}`, `{"sub":"é"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := token.FastPayload(b)
		if !ok {
			return
		}
		slow, err := token.SlowPayload(b)
		if err != nil {
			t.Fatalf("fast reader took %q, encoding/json refuses it: %v", b, err)
		}
		if fmt.Sprint(fast) != fmt.Sprint(slow) {
			t.Fatalf("%q:\n fast %v\n json %v", b, fast, slow)
		}
	})
}
