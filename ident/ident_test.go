package ident

import (
	"net/netip"
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	for _, s := range []string{"post", "comment", "bootstrap-admin", "events:watch", "a", "0", "svc_1.v2", strings.Repeat("a", 64)} {
		if err := CheckName(s); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", s, err)
		}
	}
	for _, s := range []string{"", "POST", "Post", "post comment", "-post", ".x", "рost", "bootstrap\u2010admin", "ｐｏｓｔ",
		"post\u200b", "caf\u00e9", "a/b", strings.Repeat("a", 65), "post\n", "\xff"} {
		if err := CheckName(s); err == nil {
			t.Errorf("CheckName(%q) = nil, want an error", s)
		}
	}
}

func TestCheckID(t *testing.T) {
	for _, s := range []string{"alice", "DevA-1", "Eve", "josé", "ｅｖｅ", "ева", "user@example.com", "a b", "👩💻", "auth0|5f7c8ec7c33c6c004bbafe82"} {
		if err := CheckID(s); err != nil {
			t.Errorf("CheckID(%q) = %v, want nil", s, err)
		}
	}
	for _, s := range []string{
		"jose\u0301",                                                     // decomposed: not NFC
		"e\u200bve",                                                      // zero-width space
		"eve\u200d",                                                      // zero-width joiner at the end
		"\ufeffeve",                                                      // byte order mark
		"e\u00adve",                                                      // soft hyphen
		"e\u2060ve",                                                      // word joiner
		"eve\u202e",                                                      // right-to-left override
		"e\u2066ve",                                                      // isolate
		"e\u200fve",                                                      // right-to-left mark
		"a\nb", "a\rb", "a\tb", "a\x00b", "a\x1bb", "a\x7fb", "a\u0085b", // controls
		"a\u2028b",                  // line separator
		" eve", "eve ", "eve\u3000", // surrounding spaces
		"\xffeve", // invalid UTF-8
	} {
		if err := CheckID(s); err == nil {
			t.Errorf("CheckID(%+q) = nil, want an error", s)
		}
	}
	if err := CheckID("jose\u0301"); err == nil || !strings.Contains(err.Error(), `"jos\u00e9"`) {
		t.Errorf("CheckID of a decomposed é = %v, want the NFC form in the message", err)
	}
}

func TestCheckText(t *testing.T) {
	for _, s := range []string{"", "spam", "spam in #general, see ticket 42", "Ärger über \"Spam\"", "👩‍💻 zero-width joiner in an emoji", "متن فارسی"} {
		if err := CheckText(s); err != nil {
			t.Errorf("CheckText(%q) = %v, want nil", s, err)
		}
	}
	for _, s := range []string{"a\nb", "a\rb", "\r\x1b[2K", "a\tb", "a\x00b", "a\x7f", "a\u009bb", "a\u202eb", "a\u2067b", "a\u200eb", "a\u061cb", "\xff"} {
		if err := CheckText(s); err == nil {
			t.Errorf("CheckText(%+q) = nil, want an error", s)
		}
	}
}

func TestEmbeddedIPv4(t *testing.T) {
	cases := []struct {
		in, v4, form string
		start        int
	}{
		{"::ffff:192.0.2.4", "192.0.2.4", FormMapped, 96},
		{"::192.0.2.4", "192.0.2.4", FormCompat, 96},
		{"64:ff9b::192.0.2.4", "192.0.2.4", FormNAT64, 96},
		{"2002:c000:204::", "192.0.2.4", Form6to4, 16},
		{"2002:c000:204:1::99", "192.0.2.4", Form6to4, 16},
		{"::ffff:192.0.2.4%eth0", "192.0.2.4", FormMapped, 96},
	}
	for _, c := range cases {
		v4, form, start, ok := EmbeddedIPv4(netip.MustParseAddr(c.in))
		if !ok || v4.String() != c.v4 || form != c.form || start != c.start {
			t.Errorf("EmbeddedIPv4(%s) = %v, %q, %d, %v; want %s, %q, %d", c.in, v4, form, start, ok, c.v4, c.form, c.start)
		}
	}
	for _, s := range []string{"192.0.2.4", "::", "::1", "2001:db8::1", "64:ff9b:1::192.0.2.4", "2003::1", "fe80::1"} {
		if v4, form, _, ok := EmbeddedIPv4(netip.MustParseAddr(s)); ok {
			t.Errorf("EmbeddedIPv4(%s) = %v (%s), want none", s, v4, form)
		}
	}
}

// BenchmarkCheckID: the cost the checks add to every CreateSession,
// CheckBan and ListSessions, per ID (a typical ASCII sub, and a non-ASCII
// one that takes the NFC quick check's slower path).
func BenchmarkCheckID(b *testing.B) {
	for _, id := range []string{"auth0|5f7c8ec7c33c6c004bbafe82", "Zoë Ångström-Øresund"} {
		b.Run(id[:4], func(b *testing.B) {
			for b.Loop() {
				if err := CheckID(id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
