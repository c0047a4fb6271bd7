package authority

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/portcullis-dev/portcullis/ident"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

// DefaultTenant is the tenant of requests that name none.
const DefaultTenant = "public"

// Limits on identifiers and free text, so that no request can bloat the
// store or the event stream.
const (
	maxIDLen        = 256
	maxTextLen      = 1024
	maxAttributes   = 16
	maxAttrKeyLen   = 64
	maxAttrValueLen = 256
	maxCapabilities = 32
)

// checkID validates an identifier such as a user, device or tenant ID:
// opaque and compared exactly, but in one encoding and visible (see
// ident.CheckID), so that two IDs that look alike are one ID.
func checkID(field, v string, required bool) error {
	switch {
	case v == "" && required:
		return invalid(field, "is required")
	case len(v) > maxIDLen:
		return invalid(field, "is longer than %d bytes", maxIDLen)
	}
	if err := ident.CheckID(v); err != nil {
		return invalid(field, "%v", err)
	}
	return nil
}

// checkName validates a capability or API-key name (see ident.CheckName).
func checkName(field, v string) error {
	if err := ident.CheckName(v); err != nil {
		return invalid(field, "%.64q %v", v, err)
	}
	return nil
}

// tenant returns the tenant to use for a request's tenant_id. allowAll
// admits "*" (bans); sessions live in a real tenant.
func tenant(v string, allowAll bool) (string, error) {
	if v == "" {
		return DefaultTenant, nil
	}
	if v == storage.AllTenants && !allowAll {
		return "", invalid("tenant_id", `"*" is only valid for bans; name a tenant`)
	}
	if err := checkID("tenant_id", v, true); err != nil {
		return "", err
	}
	return v, nil
}

// checkText validates free text (reasons, policies): it reaches operators'
// terminals, so control characters and bidi controls are refused (see
// ident.CheckText).
func checkText(field, v string) error {
	if len(v) > maxTextLen {
		return invalid(field, "is longer than %d bytes", maxTextLen)
	}
	if err := ident.CheckText(v); err != nil {
		return invalid(field, "%v", err)
	}
	return nil
}

func checkAttributes(attrs map[string]string) error {
	if len(attrs) > maxAttributes {
		return invalid("attributes", "has %d entries; at most %d are allowed", len(attrs), maxAttributes)
	}
	for k, v := range attrs {
		if k == "" || len(k) > maxAttrKeyLen || !utf8.ValidString(k) {
			return invalid("attributes", "key %.64q must be 1 to %d bytes of UTF-8", k, maxAttrKeyLen)
		}
		if len(v) > maxAttrValueLen || !utf8.ValidString(v) {
			return invalid("attributes", "value of %q must be at most %d bytes of UTF-8", k, maxAttrValueLen)
		}
	}
	return nil
}

func checkCapabilities(field string, caps []string) error {
	if len(caps) > maxCapabilities {
		return invalid(field, "has %d entries; at most %d are allowed", len(caps), maxCapabilities)
	}
	for _, c := range caps {
		if err := checkName(field, c); err != nil {
			return err
		}
	}
	return nil
}

// Shortest IP prefixes a ban may name: a /8 of IPv4 is 16 million
// addresses, a /16 of IPv6 more than any allocation to one network. A
// shorter prefix is much more likely a typo (or a way round the refusal of
// /0, as 0.0.0.0/1 and 128.0.0.0/1) than a ban anyone means.
const (
	minPrefix4 = 8
	minPrefix6 = 16
)

// ParseAddr parses a client address: a plain IPv4 or IPv6 address, without
// a zone, and an IPv4 client named as IPv4, not in an IPv6 form of it
// (mapped, compatible, NAT64 or 6to4; see ident.EmbeddedIPv4), so that
// IPv4 bans match it. Empty is allowed and yields the zero Addr.
func ParseAddr(field, s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, invalid(field, "%.64q is not an IP address", s)
	}
	if err := checkAddrForm(field, a, a.BitLen()); err != nil {
		return netip.Addr{}, err
	}
	return a, nil
}

// checkAddrForm refuses a zone and the IPv6 forms of IPv4, giving the
// IPv4 address or prefix to use instead.
func checkAddrForm(field string, a netip.Addr, bits int) error {
	if a.Zone() != "" {
		return invalid(field, "%s has a zone %.64q; give the address without it", a.WithZone(""), a.Zone())
	}
	v4, form, start, ok := ident.EmbeddedIPv4(a)
	if !ok {
		return nil
	}
	p := netip.PrefixFrom(a, bits)
	switch {
	case p.Bits() < start:
		return invalid(field, "%s holds %s addresses, IPv6 forms of IPv4 addresses; name IPv4 addresses as IPv4", p, form)
	case p.Bits() == a.BitLen() || (form == ident.Form6to4 && p.Bits() >= 48):
		if form == ident.Form6to4 {
			return invalid(field, "%s is in the 6to4 site of %s; name the IPv4 address: give it as %s", p, v4, v4)
		}
		return invalid(field, "%s is the %s form of %s; give it as %s", a, form, v4, v4)
	default:
		v4p := netip.PrefixFrom(v4, p.Bits()-start).Masked()
		return invalid(field, "%s is the %s form of %s; give it as %s", p, form, v4p, v4p)
	}
}

// ParsePrefix parses the ip subject of a ban: an address (a prefix of its
// full length) or a CIDR prefix with no host bits set, at least /8 (IPv4)
// or /16 (IPv6).
func ParsePrefix(field, s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := ParseAddr(field, s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if !a.IsValid() {
			return netip.Prefix{}, invalid(field, "is required")
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, invalid(field, "%.64q is not an IP address or CIDR prefix", s)
	}
	if err := checkAddrForm(field, p.Addr(), p.Bits()); err != nil {
		return netip.Prefix{}, err
	}
	if p.Bits() == 0 {
		return netip.Prefix{}, invalid(field, "%s would match every address", p)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, invalid(field, "%s has host bits set; did you mean %s?", p, m)
	}
	if p.Addr().Is4() && p.Bits() < minPrefix4 {
		return netip.Prefix{}, invalid(field, "%s is shorter than /%d, the shortest IPv4 prefix a ban may name", p, minPrefix4)
	}
	if p.Addr().Is6() && p.Bits() < minPrefix6 {
		return netip.Prefix{}, invalid(field, "%s is shorter than /%d, the shortest IPv6 prefix a ban may name", p, minPrefix6)
	}
	return p, nil
}

// subjectString is how audit records and filters name a subject.
func subjectString(kind storage.SubjectKind, value string) string {
	return fmt.Sprintf("%s:%s", kind, value)
}
