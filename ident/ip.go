package ident

import "net/netip"

// Prefixes of the IPv6 forms that embed an IPv4 address (see EmbeddedIPv4).
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052's well-known prefix
	sixToFour = netip.MustParsePrefix("2002::/16")    // RFC 3056
	v4compat  = netip.MustParsePrefix("::/96")        // RFC 4291 §2.5.5.1, deprecated
)

// Embedded IPv4 forms, as EmbeddedIPv4 names them.
const (
	FormMapped = "IPv4-mapped"
	FormCompat = "IPv4-compatible"
	FormNAT64  = "NAT64"
	Form6to4   = "6to4"
)

// EmbeddedIPv4 returns the IPv4 address a is a form of, the name of the
// form, and the bit of a at which the IPv4 address starts (so that a
// prefix of a of b >= start bits is the IPv4 prefix of min(b-start, 32)
// bits): IPv4-mapped ::ffff:a.b.c.d (96), IPv4-compatible ::a.b.c.d (96;
// :: and ::1 are IPv6's own unspecified and loopback addresses, not forms
// of IPv4), NAT64 64:ff9b::a.b.c.d (96) and 6to4 2002:AABB:CCDD:: (16;
// every address of the 6to4 site 2002:AABB:CCDD::/48 is behind the IPv4
// host AA.BB.CC.DD). A zone is ignored. ok is false for an IPv4 address and
// for every other IPv6 address.
func EmbeddedIPv4(a netip.Addr) (v4 netip.Addr, form string, start int, ok bool) {
	if !a.Is6() {
		return netip.Addr{}, "", 0, false
	}
	a = a.WithZone("")
	b := a.As16()
	last := netip.AddrFrom4([4]byte(b[12:16]))
	switch {
	case a.Is4In6():
		return last, FormMapped, 96, true
	case nat64.Contains(a):
		return last, FormNAT64, 96, true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), Form6to4, 16, true
	case v4compat.Contains(a) && a != netip.IPv6Unspecified() && a != netip.IPv6Loopback():
		return last, FormCompat, 96, true
	}
	return netip.Addr{}, "", 0, false
}
