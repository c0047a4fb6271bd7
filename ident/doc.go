// Package ident holds the rules for what Portcullis accepts as an
// identifier, a name or free text, and how it names an IPv4 address. The
// authority (internal/authority) refuses what they refuse, and the
// interceptors check their configuration with the same functions, so a
// service cannot configure a capability the authority would never accept
// in a ban.
//
// The rules, and why:
//   - Names (capability and API-key names) are lowercase ASCII tokens,
//     [a-z0-9][a-z0-9._:-]{0,63}: they are typed by operators and compared
//     byte for byte, so "POST", "рost" (Cyrillic р) or "bootstrap‐admin"
//     (a Unicode hyphen) must not be distinct names that look alike.
//   - IDs (user, device, tenant) are opaque, compared exactly: not case- or
//     width-folded, since only the service knows whether "Eve" and "eve"
//     are one user. What is refused is what makes two IDs look alike while
//     differing, or hides what an ID is: invalid UTF-8, text not in Unicode
//     NFC (so "josé" has one encoding, not also "jose" + U+0301), control
//     characters, format characters (zero-width spaces and joiners, word
//     joiner, byte order mark, soft hyphen, bidi controls) and line or
//     paragraph separators, and leading or trailing spaces.
//   - Free text (reasons, policies) may be any UTF-8 but control
//     characters (C0 including tab and newline, DEL, C1) and the bidi
//     controls that reorder what a terminal shows (U+061C, U+200E, U+200F,
//     U+202A–U+202E, U+2066–U+2069): they are what can forge or erase a
//     line of an operator's table.
//   - An IPv4 client or ban subject is named as IPv4: its IPv4-mapped
//     (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64 well-known
//     prefix (64:ff9b::a.b.c.d) and 6to4 (2002:AABB:CCDD::/48) forms are
//     recognised by EmbeddedIPv4.
//
// It imports the standard library and golang.org/x/text (for NFC) only, so
// that both the authority and the interceptors, which services link, can
// share it.
package ident
