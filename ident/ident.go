package ident

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxNameLen is the longest capability or API-key name.
const MaxNameLen = 64

// CheckName reports whether s is a name: 1 to 64 characters of a-z, 0-9,
// '.', '_', ':' and '-', starting with a letter or digit.
func CheckName(s string) error {
	if s == "" {
		return errors.New("is empty")
	}
	if len(s) > MaxNameLen {
		return fmt.Errorf("is longer than %d characters", MaxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == ':' || c == '-'):
		case 'A' <= c && c <= 'Z':
			return fmt.Errorf("has upper case; names are lower case (%s)", strings.ToLower(s))
		default:
			return errors.New("is not a name: lower-case ASCII letters, digits, '.', '_', ':' and '-', starting with a letter or digit")
		}
	}
	return nil
}

// CheckID reports whether s may be an opaque identifier: valid UTF-8 in
// NFC, without control or format characters or line separators, and
// without leading or trailing spaces. It does not check the length.
func CheckID(s string) error {
	if isASCII(s) { // the usual case, and always in NFC
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c == 0x7f {
				return fmt.Errorf("contains the control character %U", rune(c))
			}
		}
		if s != "" && (s[0] == ' ' || s[len(s)-1] == ' ') {
			return errors.New("has leading or trailing spaces")
		}
		return nil
	}
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (0x80 <= r && r <= 0x9f) {
			return fmt.Errorf("contains the control character %U", r)
		}
		// Zl and Zp are U+2028 and U+2029 alone.
		if r == 0x2028 || r == 0x2029 || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("contains the invisible character %U", r)
		}
	}
	if s != strings.TrimSpace(s) {
		return errors.New("has leading or trailing spaces")
	}
	if !norm.NFC.IsNormalString(s) {
		return fmt.Errorf("is not in Unicode NFC; give it as %+q", norm.NFC.String(s))
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// CheckText reports whether s may be free text: valid UTF-8 without
// control characters or bidi controls. It does not check the length.
func CheckText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	for _, r := range s {
		switch {
		case r < 0x20 || r == 0x7f || (0x80 <= r && r <= 0x9f):
			return fmt.Errorf("contains the control character %U", r)
		case IsBidiControl(r):
			return fmt.Errorf("contains the bidi control %U", r)
		}
	}
	return nil
}

// IsBidiControl reports whether r changes the display order of text: the
// marks U+061C, U+200E and U+200F, the embeddings and overrides
// U+202A–U+202E and the isolates U+2066–U+2069.
func IsBidiControl(r rune) bool {
	return r == 0x061c || r == 0x200e || r == 0x200f || (0x202a <= r && r <= 0x202e) || (0x2066 <= r && r <= 0x2069)
}
