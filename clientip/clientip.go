package clientip

import (
	"net"
	"net/netip"
	"strings"

	"github.com/portcullis-dev/portcullis/ident"
)

// Resolve returns the address a request from peer is checked against: peer
// itself unless it is inside one of trusted; then the right-most entry of
// forwarded (the values of the forwarding header, several headers of one
// name being one list, in order) that is not itself a trusted proxy. Each
// entry was written by the hop to its right, and that hop is trusted as
// long as every entry walked so far was a trusted proxy. If the walk meets
// a malformed entry, or the list holds only trusted proxies, the left-most
// trustworthy address (initially the peer) is the answer. trusted must
// hold prefixes from Prefix; peer is normalized here.
func Resolve(trusted []netip.Prefix, peer netip.Addr, forwarded []string) netip.Addr {
	peer = Normalize(peer)
	if !peer.IsValid() || !isTrusted(trusted, peer) {
		return peer
	}
	last := peer
	for i := len(forwarded) - 1; i >= 0; i-- {
		rest := forwarded[i]
		for {
			j := strings.LastIndexByte(rest, ',')
			a, ok := parseEntry(strings.TrimSpace(rest[j+1:]))
			if !ok {
				return last
			}
			if !isTrusted(trusted, a) {
				return a
			}
			last = a
			if j < 0 {
				break
			}
			rest = rest[:j]
		}
	}
	return last
}

func isTrusted(trusted []netip.Prefix, ip netip.Addr) bool {
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// parseEntry parses one header entry: an address, optionally with a port
// ("203.0.113.7:4711", "[2001:db8::1]:443").
func parseEntry(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return Normalize(a), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return Normalize(ap.Addr()), true
	}
	return netip.Addr{}, false
}

// Prefix returns p as Resolve compares it: masked, and a prefix of an
// IPv6 form of IPv4 as the IPv4 prefix, as Normalize names peers. ok is
// false for an invalid prefix.
func Prefix(p netip.Prefix) (netip.Prefix, bool) {
	if !p.IsValid() {
		return netip.Prefix{}, false
	}
	if v4, _, start, ok := ident.EmbeddedIPv4(p.Addr()); ok && p.Bits() >= start {
		p = netip.PrefixFrom(v4, min(p.Bits()-start, 32))
	}
	return p.Masked(), true
}

// FromNetAddr returns the normalized IP address of a transport address,
// if it has one (the zero Addr for, say, an in-memory listener).
func FromNetAddr(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case nil:
		return netip.Addr{}
	case *net.TCPAddr:
		return Normalize(a.AddrPort().Addr())
	case *net.UDPAddr:
		return Normalize(a.AddrPort().Addr())
	}
	return FromString(a.String())
}

// FromString parses "host:port" or a bare address (as http.Request's
// RemoteAddr and Envoy's socket addresses give them) into a normalized
// address; the zero Addr if it is neither.
func FromString(s string) netip.Addr {
	// host:port first: what a RemoteAddr always is, and the common case.
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return Normalize(ap.Addr())
	}
	a, _ := parseEntry(s)
	return a
}

// Normalize names an IPv4 client as IPv4, so that IPv4 bans match it and
// the authority, which refuses IPv6 forms of IPv4, accepts it: the
// IPv4-mapped form (a dual-stack listener), the NAT64 one (64:ff9b::/96,
// an IPv6-only service behind a stateless translator), the deprecated
// IPv4-compatible one, and 6to4 (every address of 2002:AABB:CCDD::/48 is a
// host behind the IPv4 address AA.BB.CC.DD, which is what a ban on it
// means). See ident.EmbeddedIPv4. It drops an IPv6 zone, which bans never
// carry.
func Normalize(a netip.Addr) netip.Addr {
	if v4, _, _, ok := ident.EmbeddedIPv4(a); ok {
		return v4
	}
	return a.WithZone("")
}
