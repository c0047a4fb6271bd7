package authority

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// DefaultTenant is the tenant of requests that name none.
const DefaultTenant = "public"

// Limits on identifiers and free text, so that no request can bloat the
// store or the event stream.
const (
	maxIDLen         = 256
	maxTextLen       = 1024
	maxAttributes    = 16
	maxAttrKeyLen    = 64
	maxAttrValueLen  = 256
	maxCapabilities  = 32
	maxCapabilityLen = 64
)

// checkID validates an identifier such as a user or device ID.
func checkID(field, v string, required bool) error {
	switch {
	case v == "" && required:
		return invalid(field, "is required")
	case len(v) > maxIDLen:
		return invalid(field, "is longer than %d bytes", maxIDLen)
	case !utf8.ValidString(v):
		return invalid(field, "is not valid UTF-8")
	case strings.ContainsAny(v, "\x00\n\r\t"):
		return invalid(field, "contains control characters")
	case v != strings.TrimSpace(v):
		return invalid(field, "has leading or trailing spaces")
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

func checkText(field, v string) error {
	if len(v) > maxTextLen {
		return invalid(field, "is longer than %d bytes", maxTextLen)
	}
	if !utf8.ValidString(v) {
		return invalid(field, "is not valid UTF-8")
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
		if c == "" || len(c) > maxCapabilityLen || strings.ContainsAny(c, " \x00\n\r\t") || !utf8.ValidString(c) {
			return invalid(field, "%.64q is not a capability name (1 to %d bytes, no spaces)", c, maxCapabilityLen)
		}
	}
	return nil
}

// ParseAddr parses a client address: a plain IPv4 or IPv6 address, not
// IPv4-mapped (an IPv4 client must be named as IPv4, so that IPv4 bans match
// it) and without a zone. Empty is allowed and yields the zero Addr.
func ParseAddr(field, s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, invalid(field, "%.64q is not an IP address", s)
	}
	if err := checkAddrForm(field, a); err != nil {
		return netip.Addr{}, err
	}
	return a, nil
}

func checkAddrForm(field string, a netip.Addr) error {
	if a.Zone() != "" {
		return invalid(field, "%s has a zone %.64q; give the address without it", a.WithZone(""), a.Zone())
	}
	if a.Is4In6() {
		return invalid(field, "%s is an IPv4-mapped IPv6 address; give it as %s", a, a.Unmap())
	}
	return nil
}

// ParsePrefix parses the ip subject of a ban: an address (a prefix of its
// full length) or a CIDR prefix with no host bits set.
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
	if err := checkAddrForm(field, p.Addr()); err != nil {
		return netip.Prefix{}, err
	}
	if p.Bits() == 0 {
		return netip.Prefix{}, invalid(field, "%s would match every address", p)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, invalid(field, "%s has host bits set; did you mean %s?", p, m)
	}
	return p, nil
}

// subjectString is how audit records and filters name a subject.
func subjectString(kind storage.SubjectKind, value string) string {
	return fmt.Sprintf("%s:%s", kind, value)
}
