package main

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// printable is what every human-readable output of the CLI (tables, the
// lines of watch, check, ban, revoke...) passes text from the authority
// through before it reaches a terminal. The authority refuses control
// characters and bidi controls in IDs and free text, but records written
// before it did, or by another tool, may still hold them, and a reason of
// "\r\x1b[2K" would erase the table row it is on, a "\n" forge one, and a
// U+202E reverse what follows. So: every character strconv.IsPrint refuses
// (controls, format characters such as bidi controls and zero-width
// spaces, separators other than the ASCII space) is written as its Go
// escape (\r, \x1b, \u202e), an invalid byte as \xff, and a backslash as
// \\ so that an escape cannot be forged by typing one. Ordinary text,
// non-ASCII letters and emoji included, is left as it is, unquoted. JSON
// output (-o json) needs none of this: protojson escapes control
// characters itself.
func printable(s string) string {
	clean := true
	for _, r := range s {
		if r == '\\' || r == utf8.RuneError || !strconv.IsPrint(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case strconv.IsPrint(r):
			b.WriteString(s[i : i+n])
		default:
			q := strconv.QuoteRuneToASCII(r) // '\r', '\x1b', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}
