package interceptors

import (
	"context"
	"net"
	"net/netip"
	"strings"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/portcullis-dev/portcullis/ident"
)

// clientIP returns the address the call is checked against: the peer's,
// or, when the peer is a trusted proxy, the right-most address of the
// client IP header that is not itself a trusted proxy. The zero Addr when
// the transport has no IP address.
func (c *config) clientIP(ctx context.Context) netip.Addr {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return netip.Addr{}
	}
	ip := addrOf(p.Addr)
	if !ip.IsValid() || !c.isTrusted(ip) {
		return ip
	}
	return c.forwarded(metadata.ValueFromIncomingContext(ctx, c.ipHeader), ip)
}

// forwarded walks the header values (several headers of one name are one
// list, in order) from the right. Each entry was written by the hop to its
// right, and that hop is trusted as long as every entry walked so far was
// a trusted proxy; the first address that is not is the client. If the
// walk meets a malformed entry, or the list holds only trusted proxies,
// the left-most trustworthy address (initially the peer) is the answer.
func (c *config) forwarded(vals []string, peerIP netip.Addr) netip.Addr {
	last := peerIP
	for i := len(vals) - 1; i >= 0; i-- {
		rest := vals[i]
		for {
			j := strings.LastIndexByte(rest, ',')
			a, ok := parseForwarded(strings.TrimSpace(rest[j+1:]))
			if !ok {
				return last
			}
			if !c.isTrusted(a) {
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

func (c *config) isTrusted(ip netip.Addr) bool {
	for _, p := range c.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// parseForwarded parses one header entry: an address, optionally with a
// port ("203.0.113.7:4711", "[2001:db8::1]:443").
func parseForwarded(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return normalize(a), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return normalize(ap.Addr()), true
	}
	return netip.Addr{}, false
}

// addrOf returns the IP address of a transport address, if it has one.
func addrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		return normalize(a.AddrPort().Addr())
	case *net.UDPAddr:
		return normalize(a.AddrPort().Addr())
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return normalize(ap.Addr())
	}
	return netip.Addr{}
}

// normalize names an IPv4 client as IPv4, so that IPv4 bans match it and
// the authority, which refuses IPv6 forms of IPv4, accepts it: the
// IPv4-mapped form (a dual-stack listener), the NAT64 one (64:ff9b::/96,
// an IPv6-only service behind a stateless translator), the deprecated
// IPv4-compatible one, and 6to4 (every address of 2002:AABB:CCDD::/48 is a
// host behind the IPv4 address AA.BB.CC.DD, which is what a ban on it
// means). See ident.EmbeddedIPv4. It drops an IPv6 zone, which bans never
// carry.
func normalize(a netip.Addr) netip.Addr {
	if v4, _, _, ok := ident.EmbeddedIPv4(a); ok {
		return v4
	}
	return a.WithZone("")
}
