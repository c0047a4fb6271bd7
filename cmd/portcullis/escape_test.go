package main

import "testing"

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"":                              "",
		"spam":                          "spam",
		"Spam über alles 🙄 (ticket 42)": "Spam über alles 🙄 (ticket 42)",
		"spam\r\x1b[2K":                 `spam\r\x1b[2K`,
		"a\nban_x  user:bob  lifted":    `a\nban_x  user:bob  lifted`,
		"col\tumn":                      `col\tumn`,
		"\u202edetfil":                  `\u202edetfil`,
		"e\u200bve":                     `e\u200bve`,
		"nul\x00 del\x7f c1\u009b":      `nul\x00 del\x7f c1\u009b`,
		"a\u2028b":                      `a\u2028b`,
		"bad\xffbyte":                   `bad\xffbyte`,
		`a\nb`:                          `a\\nb`, // a typed backslash cannot pass for an escape
		"\ufffd":                        "\ufffd",
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%+q) = %s, want %s", in, got, want)
		}
	}
}
