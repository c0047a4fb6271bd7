package token_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/token"
)

// FuzzForgery starts from a token the authority's key signed and lets the
// fuzzer rewrite it: splice bytes in, cut it, or replace its header or
// claims segment. Whatever comes out, neither verifier may accept claims
// other than the signed ones (an accepted token may differ only in bytes
// the base64 decoder ignores), and both must agree. Its seed corpus runs
// in `go test`; `make fuzz` runs it longer.
func FuzzForgery(f *testing.F) {
	orig := mustSign(f, validClaims(), "k1", privKey)
	want := outcome(token.Parse(orig, issuer, now, lookup))
	parts := strings.Split(orig, ".")
	f.Add(0, "", "", "")
	f.Add(5, "x", "", "")
	f.Add(len(parts[0])+3, "A", "", "")
	f.Add(0, "", `{"alg":"none","kid":"k1"}`, "")
	f.Add(0, "", `{"alg":"HS256","kid":"k1"}`, "")
	f.Add(0, "", `{"alg":"EdDSA","kid":"../../etc/passwd"}`, "")
	f.Add(0, "", `{"alg":"EdDSA","kid":"k1","crit":["exp"]}`, "")
	f.Add(0, "", `{"alg":"EdDSA","kid":"k1","jwk":{"kty":"OKP"}}`, "")
	f.Add(0, "", "", `{"sid":"ses_1","tid":"public","sub":"root","iss":"portcullis","exp":9999999999}`)
	f.Add(len(orig)-1, "\n", "", "")
	f.Fuzz(func(t *testing.T, at int, insert, header, claims string) {
		p := append([]string(nil), parts...)
		if header != "" {
			p[0] = enc(header)
		}
		if claims != "" {
			p[1] = enc(claims)
		}
		tok := strings.Join(p, ".")
		i := int(uint(at) % uint(len(tok)+1))
		tok = tok[:i] + insert + tok[i:]
		got := agree(t, tok, now)
		if strings.HasPrefix(got, "ok") && got != want {
			t.Fatalf("forgery accepted: %q\n got:  %s\n want: %s", tok, got, want)
		}
	})
}

func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
