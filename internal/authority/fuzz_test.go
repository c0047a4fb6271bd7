package authority

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/portcullis-dev/portcullis/ident"
)

// The fuzz targets of the parsers that take caller input. Their seed
// corpora run in `go test`; `make test` fuzzes each for a few seconds and
// `make fuzz` for longer.

// FuzzParseDuration: no panic; an accepted duration is positive and at
// most 100 years; an error is never the empty string.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"90m", "1.5h", "7d", "1d12h", "0.5d", "36500d", "", "-5m", "0s", "abc", "5x", "1.2.3h",
		"40000d", "99999999999h", "+5m", "9223372036854775807ns", "1e3h", ".d", "1..5d", "0.0000000001d", "36499.99999d1h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("ParseDuration(%q): empty error", s)
			}
			return
		}
		if d <= 0 || d > maxBanDuration {
			t.Fatalf("ParseDuration(%q) = %v, outside (0, 100y]", s, d)
		}
	})
}

// FuzzParseSubjectIP: ParsePrefix and ParseAddr never panic; what they
// accept is canonical (valid, unzoned, no IPv6 form of IPv4, no host
// bits, at least /8 or /16) and round-trips through its String form; what
// they refuse is a FieldError on the named field with a bounded message.
func FuzzParseSubjectIP(f *testing.F) {
	for _, s := range []string{"203.0.113.7", "203.0.113.0/24", "2001:db8::1", "2001:db8::/32", "", "10.0.0.0/33",
		"10.1.2.3/8", "0.0.0.0/0", "::/0", "::ffff:1.2.3.4", "::ffff:1.2.3.0/120", "fe80::1%eth0", "fe80::1%eth0/64",
		"300.1.1.1", "example.com", "10.0.0.0/-1", "1.2.3.4/032", "::/128", "0.0.0.0", strings.Repeat("1", 300),
		"::1.2.3.4", "64:ff9b::1.2.3.4", "64:ff9b::1.2.3.0/120", "2002:102:304::1", "2002:102::/32", "0.0.0.0/1", "8000::/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		refused := func(what string, err error) {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != "ip" || !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("%s(%q): %v, want a FieldError on ip", what, s, err)
			}
			if len(err.Error()) > 512 || !utf8.ValidString(err.Error()) {
				t.Fatalf("%s(%q): unbounded or invalid error message %q", what, s, err)
			}
		}
		p, err := ParsePrefix("ip", s)
		if err != nil {
			refused("ParsePrefix", err)
		} else {
			a := p.Addr()
			_, _, _, embedded := ident.EmbeddedIPv4(a)
			if !p.IsValid() || a.Zone() != "" || embedded || p.Masked() != p || (a.Is4() && p.Bits() < 8) || (a.Is6() && p.Bits() < 16) {
				t.Fatalf("ParsePrefix(%q) accepted %v", s, p)
			}
			if q, err := ParsePrefix("ip", p.String()); err != nil || q != p {
				t.Fatalf("ParsePrefix(%q) = %v does not round-trip: %v, %v", s, p, q, err)
			}
		}
		a, err := ParseAddr("ip", s)
		if err != nil {
			refused("ParseAddr", err)
			return
		}
		if s == "" {
			if a.IsValid() {
				t.Fatalf("ParseAddr(\"\") = %v", a)
			}
			return
		}
		if _, _, _, embedded := ident.EmbeddedIPv4(a); !a.IsValid() || a.Zone() != "" || embedded {
			t.Fatalf("ParseAddr(%q) accepted %v", s, a)
		}
		if p, err := ParsePrefix("ip", s); err != nil || p != netip.PrefixFrom(a, a.BitLen()) {
			t.Fatalf("ParseAddr(%q) = %v but ParsePrefix = %v, %v", s, a, p, err)
		}
	})
}

// FuzzPageToken: Page.start never panics; a refused page is
// InvalidArgument or INVALID_PAGE_TOKEN; an accepted one has a size in
// [1, MaxPageSize] and a non-empty position when a token was given; a
// token is bound to its listing and filters; every token the authority
// issues round-trips.
func FuzzPageToken(f *testing.F) {
	filters := BanFilter{TenantID: "public"}
	good := nextPageToken("bans", filters, "ban_01")
	for _, s := range []string{"", good, nextPageToken("sessions", filters, "ses_1"), "eyJhIjoiIn0", "!!!", "e30", "bnVsbA",
		good + "A", strings.Repeat("A", 1000)} {
		f.Add(int32(0), s, "ban_01")
		f.Add(int32(-1), s, "x")
		f.Add(int32(MaxPageSize+1), s, "")
	}
	f.Fuzz(func(t *testing.T, size int32, tok, id string) {
		p := Page{Size: size, Token: tok}
		n, after, err := p.start("bans", filters)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) && !errors.Is(err, ErrInvalidPageToken) {
				t.Fatalf("start(%d, %q): %v", size, tok, err)
			}
			return
		}
		if n < 1 || n > MaxPageSize {
			t.Fatalf("start(%d, %q): size %d", size, tok, n)
		}
		if tok != "" && after == "" {
			t.Fatalf("start(%d, %q): a token but no position", size, tok)
		}
		if tok != "" {
			if _, _, err := p.start("sessions", filters); err == nil {
				t.Fatalf("token %q of bans accepted by sessions", tok)
			}
			if _, _, err := p.start("bans", BanFilter{TenantID: "other"}); err == nil {
				t.Fatalf("token %q accepted with other filters", tok)
			}
		}
		if id != "" && utf8.ValidString(id) { // IDs are checked UTF-8
			q := Page{Size: 1, Token: nextPageToken("bans", filters, id)}
			if _, got, err := q.start("bans", filters); err != nil || got != id {
				t.Fatalf("the token of %q round-trips to %q, %v", id, got, err)
			}
		}
	})
}
