package agent

import "testing"

// The scheme is case-insensitive (RFC 7235) whichever path compares it.
func TestBearer(t *testing.T) {
	for v, want := range map[string]string{
		"Bearer abc":     "abc",
		"bearer abc":     "abc",
		"BEARER abc":     "abc",
		"bEaReR  abc  ":  "abc",
		"Bearer ":        "",
		"Bearer    ":     "",
		"Bearer":         "",
		"Basic abc":      "",
		"Bearerabc":      "",
		"Bearer\tabc":    "",
		"":               "",
		"Bearers abc":    "",
		"xBearer abcdef": "",
	} {
		tok, ok := bearer(v)
		if tok != want || ok != (want != "") {
			t.Errorf("bearer(%q) = %q, %v; want %q", v, tok, ok, want)
		}
	}
}
