package token_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis-dev/portcullis/token"
)

const issuer = "portcullis"

// audience is the aud the audience checks require (not the issuer, so
// that a mix-up of the two shows).
const audience = "portcullis-api"

var (
	now     = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	seed    = []byte("0123456789abcdef0123456789abcdef")
	privKey = ed25519.NewKeyFromSeed(seed)
	pubKey  = privKey.Public().(ed25519.PublicKey)
	// otherKey signs tokens no lookup knows.
	otherKey = ed25519.NewKeyFromSeed([]byte("fedcba9876543210fedcba9876543210"))
	shortKey = ed25519.PublicKey(pubKey[:16])
)

func lookup(kid string) (ed25519.PublicKey, bool) {
	switch kid {
	case "k1":
		return pubKey, true
	case "short":
		return shortKey, true // a malformed key: both must refuse, not panic
	}
	return nil, false
}

// signed returns a compact JWT over the given raw header and claims JSON.
func signed(key ed25519.PrivateKey, header, claims string) string {
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	return input + "." + enc.EncodeToString(ed25519.Sign(key, []byte(input)))
}

func validClaims() *token.Claims {
	return &token.Claims{
		SessionID: "ses_1", TenantID: "public", DeviceID: "d1",
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: issuer, Subject: "alice", Audience: jwt.ClaimStrings{audience},
			IssuedAt:  jwt.NewNumericDate(now.Add(-time.Minute)),
			ExpiresAt: jwt.NewNumericDate(now.Add(14 * time.Minute)),
		},
	}
}

func mustSign(t testing.TB, c *token.Claims, kid string, key ed25519.PrivateKey) string {
	t.Helper()
	s, err := token.Sign(c, kid, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// outcome classifies a result so that the two verifiers can be compared.
func outcome(c *token.Claims, err error) string {
	switch {
	case errors.Is(err, token.ErrExpired):
		return "expired"
	case errors.Is(err, token.ErrInvalid):
		return "invalid"
	case err != nil:
		return "other error: " + err.Error()
	}
	date := func(d *jwt.NumericDate) string {
		if d == nil {
			return "-"
		}
		return fmt.Sprint(d.Unix(), d.Nanosecond())
	}
	return fmt.Sprintf("ok sid=%q tid=%q did=%q sub=%q iss=%q aud=%q jti=%q exp=%s iat=%s nbf=%s",
		c.SessionID, c.TenantID, c.DeviceID, c.Subject, c.Issuer, c.Audience, c.ID,
		date(c.ExpiresAt), date(c.IssuedAt), date(c.NotBefore))
}

// agree fails unless Verify and Parse give the same outcome for tok, with
// and without an audience to check, and returns the outcome without.
func agree(t testing.TB, tok string, at time.Time) string {
	t.Helper()
	agreeWith(t, tok, at, token.WithAudience(audience))
	return agreeWith(t, tok, at)
}

// agreeWith is agree with the given options only.
func agreeWith(t testing.TB, tok string, at time.Time, opts ...token.Option) string {
	t.Helper()
	want := outcome(token.Parse(tok, issuer, at, lookup, opts...))
	got := outcome(token.Verify(tok, issuer, at, lookup, opts...))
	if got != want {
		t.Fatalf("token %q (options %v):\n Verify: %s\n Parse:  %s", tok, opts, got, want)
	}
	return got
}

// TestVerifyAudience: with WithAudience, both verifiers accept
// only a token whose aud is, or contains, the audience; the authority's
// tokens (aud as golang-jwt writes it, an array of one) take the fast
// path's plain form and pass.
func TestVerifyAudience(t *testing.T) {
	const hdr = `{"alg":"EdDSA","kid":"k1"}`
	exp := fmt.Sprint(now.Add(10 * time.Minute).Unix())
	claims := func(aud string) string {
		return `{"sid":"s","tid":"t","iss":"portcullis","sub":"u","exp":` + exp + aud + `}`
	}
	signedAud := validClaims() // with the audience, as the authority signs
	for _, tc := range []struct {
		name, tok, want string
	}{
		{"signed by Sign", mustSign(t, signedAud, "k1", privKey), "ok"},
		{"string", signed(privKey, hdr, claims(`,"aud":"portcullis-api"`)), "ok"},
		{"array of one", signed(privKey, hdr, claims(`,"aud":["portcullis-api"]`)), "ok"},
		{"array of one, spaces", signed(privKey, hdr, claims(`,"aud": [ "portcullis-api" ] `)), "ok"},
		{"array containing it", signed(privKey, hdr, claims(`,"aud":["other","portcullis-api"]`)), "ok"},
		{"no aud", signed(privKey, hdr, claims(``)), "invalid"},
		{"empty aud", signed(privKey, hdr, claims(`,"aud":""`)), "invalid"},
		{"empty array", signed(privKey, hdr, claims(`,"aud":[]`)), "invalid"},
		{"other audience", signed(privKey, hdr, claims(`,"aud":"other"`)), "invalid"},
		{"other audiences", signed(privKey, hdr, claims(`,"aud":["other","x"]`)), "invalid"},
		{"case differs", signed(privKey, hdr, claims(`,"aud":"Portcullis-API"`)), "invalid"},
		{"aud null", signed(privKey, hdr, claims(`,"aud":null`)), "invalid"},
		{"aud number in array", signed(privKey, hdr, claims(`,"aud":[1]`)), "invalid"},
		{"array on another claim", signed(privKey, hdr, `{"sid":["s"],"tid":"t","iss":"portcullis","sub":"u","aud":"portcullis-api","exp":`+exp+`}`), "invalid"},
		{"exp in an array", signed(privKey, hdr, `{"sid":"s","tid":"t","iss":"portcullis","sub":"u","aud":"portcullis-api","exp":["`+exp+`"]}`), "invalid"},
		{"expired, other audience", signed(privKey, hdr, `{"sid":"s","tid":"t","iss":"portcullis","sub":"u","aud":"other","exp":`+fmt.Sprint(now.Unix())+`}`), "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := agreeWith(t, tc.tok, now, token.WithAudience(audience)); !strings.HasPrefix(got, tc.want) {
				t.Fatalf("outcome %s, want %s", got, tc.want)
			}
			agreeWith(t, tc.tok, now)
		})
	}
}

func TestVerifyAgreesWithParse(t *testing.T) {
	const hdr = `{"alg":"EdDSA","kid":"k1","typ":"JWT"}`
	exp, iat := now.Add(10*time.Minute).Unix(), now.Add(-time.Minute).Unix()
	claims := func(extra string) string {
		return fmt.Sprintf(`{"sid":"ses_1","tid":"public","did":"d1","iss":"portcullis","sub":"alice","exp":%d,"iat":%d%s}`, exp, iat, extra)
	}
	cases := []struct {
		name string
		tok  string
		want string // "ok", "expired" or "invalid" (prefix of the outcome)
	}{
		{"signed by Sign", mustSign(t, validClaims(), "k1", privKey), "ok"},
		{"no device", mustSign(t, func() *token.Claims { c := validClaims(); c.DeviceID = ""; return c }(), "k1", privKey), "ok"},
		{"plain", signed(privKey, hdr, claims("")), "ok"},
		{"whitespace", signed(privKey, " {\n\"alg\" : \"EdDSA\" ,\t\"kid\":\"k1\"}\r\n", " {\"sid\" :\"ses_1\", \"tid\":\"public\",\"iss\":\"portcullis\",\"sub\":\"alice\",\"exp\" : "+fmt.Sprint(exp)+" } "), "ok"},
		{"escaped strings", signed(privKey, `{"alg":"Ed\u0044SA","kid":"k\u0031"}`, `{"sid":"ses_\u00e9","tid":"public","iss":"portcullis","sub":"al\"ice","exp":`+fmt.Sprint(exp)+`}`), "ok"},
		{"unicode", signed(privKey, hdr, `{"sid":"séance","tid":"public","iss":"portcullis","sub":"ålice","exp":`+fmt.Sprint(exp)+`}`), "ok"},
		{"float exp", signed(privKey, hdr, `{"sid":"s","tid":"t","iss":"portcullis","sub":"u","exp":`+fmt.Sprint(exp)+`.75}`), "ok"},
		{"exponent exp", signed(privKey, hdr, `{"sid":"s","tid":"t","iss":"portcullis","sub":"u","exp":1.8e9}`), "ok"},
		{"string exp", signed(privKey, hdr, `{"sid":"s","tid":"t","iss":"portcullis","sub":"u","exp":"`+fmt.Sprint(exp)+`"}`), "ok"},
		{"aud and jti", signed(privKey, hdr, claims(`,"aud":["a","b"],"jti":"j1"`)), "ok"},
		{"unknown claim", signed(privKey, hdr, claims(`,"x":{"y":[1,2]}`)), "ok"},
		{"upper-case key", signed(privKey, hdr, claims(`,"SID":"other"`)), "ok"},
		{"duplicate key", signed(privKey, hdr, claims(`,"sub":"bob"`)), "ok"},
		{"duplicate alg", signed(privKey, `{"alg":"none","kid":"k1","alg":"EdDSA"}`, claims("")), "ok"},
		{"upper-case ALG", signed(privKey, `{"ALG":"none","kid":"k1","alg":"EdDSA"}`, claims("")), "ok"},
		{"header extras", signed(privKey, `{"alg":"EdDSA","kid":"k1","x5c":null,"n":1}`, claims("")), "ok"},
		// RFC 7515 4.1.11: a crit header names extensions the verifier
		// must understand; Portcullis understands none.
		{"crit header", signed(privKey, `{"alg":"EdDSA","kid":"k1","crit":["b64"],"x5c":null,"n":1}`, claims("")), "invalid"},
		{"crit header, plain", signed(privKey, `{"alg":"EdDSA","kid":"k1","crit":"x"}`, claims("")), "invalid"},
		{"crit header, null", signed(privKey, `{"alg":"EdDSA","crit":null,"kid":"k1"}`, claims("")), "invalid"},
		{"newline in signature", func() string { s := signed(privKey, hdr, claims("")); return s[:len(s)-10] + "\n" + s[len(s)-10:] }(), "ok"},
		{"newline in header", func() string { s := signed(privKey, hdr, claims("")); return s[:10] + "\n" + s[10:] }(), "invalid"},

		{"expired", signed(privKey, hdr, strings.Replace(claims(""), fmt.Sprint(exp), fmt.Sprint(now.Unix()), 1)), "expired"},
		{"expired and wrong issuer", signed(privKey, hdr, `{"sid":"s","tid":"t","iss":"evil","sub":"u","exp":`+fmt.Sprint(now.Add(-time.Second).Unix())+`}`), "expired"},
		{"expired, no sid", signed(privKey, hdr, `{"tid":"t","iss":"portcullis","sub":"u","exp":`+fmt.Sprint(now.Add(-time.Second).Unix())+`}`), "expired"},

		{"alg none", signed(privKey, `{"alg":"none","kid":"k1"}`, claims("")), "invalid"},
		{"alg HS256", signed(privKey, `{"alg":"HS256","kid":"k1"}`, claims("")), "invalid"},
		{"alg number", signed(privKey, `{"alg":1,"kid":"k1"}`, claims("")), "invalid"},
		{"no alg", signed(privKey, `{"kid":"k1"}`, claims("")), "invalid"},
		{"no kid", signed(privKey, `{"alg":"EdDSA"}`, claims("")), "invalid"},
		{"empty kid", signed(privKey, `{"alg":"EdDSA","kid":""}`, claims("")), "invalid"},
		{"kid number", signed(privKey, `{"alg":"EdDSA","kid":1}`, claims("")), "invalid"},
		{"unknown kid", signed(privKey, `{"alg":"EdDSA","kid":"k2"}`, claims("")), "invalid"},
		{"short key", signed(privKey, `{"alg":"EdDSA","kid":"short"}`, claims("")), "invalid"},
		{"other key", signed(otherKey, hdr, claims("")), "invalid"},
		{"header null", signed(privKey, `null`, claims("")), "invalid"},
		{"header array", signed(privKey, `["alg"]`, claims("")), "invalid"},
		{"header trailing", signed(privKey, hdr+`x`, claims("")), "invalid"},
		{"claims null", signed(privKey, hdr, `null`), "invalid"},
		{"claims trailing comma", signed(privKey, hdr, claims(",")), "invalid"},
		{"claims garbage", signed(privKey, hdr, claims("")+"}"), "invalid"},
		{"claims not JSON", signed(privKey, hdr, `sid=1`), "invalid"},
		{"no exp", signed(privKey, hdr, `{"sid":"s","tid":"t","iss":"portcullis","sub":"u"}`), "invalid"},
		{"exp null", signed(privKey, hdr, `{"sid":"s","tid":"t","iss":"portcullis","sub":"u","exp":null}`), "invalid"},
		{"exp bool", signed(privKey, hdr, `{"sid":"s","tid":"t","iss":"portcullis","sub":"u","exp":true}`), "invalid"},
		{"wrong issuer", signed(privKey, hdr, strings.Replace(claims(""), `"portcullis"`, `"evil"`, 1)), "invalid"},
		{"no issuer", signed(privKey, hdr, strings.Replace(claims(""), `"iss":"portcullis",`, ``, 1)), "invalid"},
		{"iat in the future", signed(privKey, hdr, claims(`,"iat":`+fmt.Sprint(now.Add(time.Second).Unix()))), "invalid"},
		{"nbf in the future", signed(privKey, hdr, claims(`,"nbf":`+fmt.Sprint(now.Add(time.Second).Unix()))), "invalid"},
		{"no sid", signed(privKey, hdr, strings.Replace(claims(""), `"sid":"ses_1",`, ``, 1)), "invalid"},
		{"empty tid", signed(privKey, hdr, strings.Replace(claims(""), `"tid":"public"`, `"tid":""`, 1)), "invalid"},
		{"sid number", signed(privKey, hdr, strings.Replace(claims(""), `"sid":"ses_1"`, `"sid":1`, 1)), "invalid"},
		{"aud number", signed(privKey, hdr, claims(`,"aud":5`)), "invalid"},
		{"two segments", "a.b", "invalid"},
		{"four segments", signed(privKey, hdr, claims("")) + ".x", "invalid"},
		{"padding", signed(privKey, hdr, claims("")) + "=", "invalid"},
		{"bad base64", "!!!." + strings.SplitN(signed(privKey, hdr, claims("")), ".", 2)[1], "invalid"},
		{"empty", "", "invalid"},
		{"dots", "..", "invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := agree(t, tc.tok, now)
			if !strings.HasPrefix(got, tc.want) {
				t.Fatalf("outcome %s, want %s", got, tc.want)
			}
		})
	}
}

// TestVerifyMutations: every single-byte change, deletion and truncation
// of valid tokens is rejected by both.
func TestVerifyMutations(t *testing.T) {
	toks := []string{
		mustSign(t, validClaims(), "k1", privKey),
		signed(privKey, `{"alg":"EdDSA","kid":"k1"}`, `{"sid":"s","tid":"t","iss":"portcullis","sub":"u","exp":1900000000}`),
	}
	for _, tok := range toks {
		if got := agree(t, tok, now); !strings.HasPrefix(got, "ok") {
			t.Fatalf("unmutated token: %s", got)
		}
		for i := range len(tok) {
			for _, c := range []byte{'A', '_', '.', '=', ' ', '0', 0x80} {
				if tok[i] == c {
					continue
				}
				m := tok[:i] + string(c) + tok[i+1:]
				// A changed last character of a segment may differ only in
				// unused bits: the same bytes, accepted by both.
				if got := agree(t, m, now); strings.HasPrefix(got, "ok") && !unusedBits(tok, i) {
					t.Fatalf("mutation at %d (%q) accepted: %q", i, c, m)
				}
			}
			agree(t, tok[:i]+tok[i+1:], now)
			agree(t, tok[:i], now)
		}
	}
}

// unusedBits reports whether position i is the last character of a
// segment, whose low bits base64 decoding may ignore.
func unusedBits(tok string, i int) bool { return i == len(tok)-1 || tok[i+1] == '.' }

// TestVerifyTimes: exp and iat boundaries agree at every second around
// them.
func TestVerifyTimes(t *testing.T) {
	tok := mustSign(t, validClaims(), "k1", privKey)
	c := validClaims()
	for d := -3 * time.Second; d <= 3*time.Second; d += 500 * time.Millisecond {
		agree(t, tok, c.ExpiresAt.Add(d))
		agree(t, tok, c.IssuedAt.Add(d))
	}
}

// FuzzVerify signs whatever header and claims the fuzzer makes up, so that
// the JSON handling is compared on validly signed tokens, then also checks
// a mutation of the signed token. Its seed corpus runs in `go test`.
func FuzzVerify(f *testing.F) {
	exp := fmt.Sprint(now.Add(10 * time.Minute).Unix())
	f.Add(`{"alg":"EdDSA","kid":"k1","typ":"JWT"}`, `{"sid":"ses_1","tid":"public","did":"d1","iss":"portcullis","sub":"alice","exp":`+exp+`,"iat":1795000000}`, 0, byte(0))
	f.Add(`{"alg":"EdDSA","kid":"k1"}`, `{"sid":"s","tid":"t","iss":"portcullis","sub":"u","exp":`+exp+`.5}`, 3, byte('x'))
	f.Add(`{"alg":"none","kid":"k1"}`, `{"sid":"s","tid":"t","iss":"portcullis","sub":"u","exp":`+exp+`}`, 0, byte(0))
	f.Add(`{"alg":"EdDSA","kid":"k1"}`, `{"sid":"s","tid":"t","iss":"portcullis","sub":"u","exp":"`+exp+`"}`, 0, byte(0))
	f.Add(` {"alg" : "EdDSA", "kid":"k1"} `, `{"SID":"s","tid":"t","iss":"portcullis","sub":"u","exp":`+exp+`,"aud":"x"}`, 0, byte(0))
	f.Add(`{"alg":"EdDSA","kid":"k1"}`, `{"sid":"s","tid":"t","iss":"portcullis","sub":"u","exp":-0}`, 0, byte(0))
	f.Add(`{"alg":"EdDSA","kid":"k1"}`, `{"sid":"s","tid":"t","iss":"portcullis","aud":["portcullis-api"],"sub":"u","exp":`+exp+`}`, 0, byte(0))
	f.Add(`{"alg":"EdDSA","kid":"k1","x":["y"]}`, `{"sid":"s","tid":"t","iss":"portcullis","aud":[ "a" ,"portcullis-api"],"sub":"u","exp":`+exp+`}`, 0, byte(0))
	f.Add(`{"alg":"EdDSA","kid":"k1"}`, `{"sid":"s","tid":"t","iss":"portcullis","sub":"u","exp":`+exp+`,"nbf":`+exp+`}`, 0, byte(0))
	f.Fuzz(func(t *testing.T, header, claims string, at int, b byte) {
		tok := signed(privKey, header, claims)
		agree(t, tok, now)
		if at > 0 {
			i := at % len(tok)
			agree(t, tok[:i]+string(b)+tok[i+1:], now)
		}
	})
}

func BenchmarkEd25519Verify(b *testing.B) {
	tok := mustSign(b, validClaims(), "k1", privKey)
	i := strings.LastIndexByte(tok, '.')
	msg := []byte(tok[:i])
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if !ed25519.Verify(pubKey, msg, sig) {
			b.Fatal("bad signature")
		}
	}
}

// BenchmarkVerifyVsEd25519 interleaves Verify and a bare ed25519.Verify of
// the same token and reports the ratio of their times (x-ed25519), which
// a changing machine load does not skew. Goal: <= 1.2.
func BenchmarkVerifyVsEd25519(b *testing.B) {
	benchRatio(b, func(tok string) error { _, err := token.Verify(tok, issuer, now, lookup); return err })
}

// BenchmarkParseVsEd25519 is the same for Parse (golang-jwt).
func BenchmarkParseVsEd25519(b *testing.B) {
	benchRatio(b, func(tok string) error { _, err := token.Parse(tok, issuer, now, lookup); return err })
}

func benchRatio(b *testing.B, verify func(string) error) {
	tok := mustSign(b, validClaims(), "k1", privKey)
	i := strings.LastIndexByte(tok, '.')
	msg := []byte(tok[:i])
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	var mine, bare time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := verify(tok); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if !ed25519.Verify(pubKey, msg, sig) {
			b.Fatal("bad signature")
		}
		mine, bare = mine+t1.Sub(t0), bare+time.Since(t1)
	}
	b.ReportMetric(float64(mine)/float64(bare), "x-ed25519")
}

func BenchmarkVerify(b *testing.B) {
	tok := mustSign(b, validClaims(), "k1", privKey)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := token.Verify(tok, issuer, now, lookup); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	tok := mustSign(b, validClaims(), "k1", privKey)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := token.Parse(tok, issuer, now, lookup); err != nil {
			b.Fatal(err)
		}
	}
}
