package interceptors

import (
	"context"
	"net/netip"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/portcullis-dev/portcullis/clientip"
)

// clientIP returns the address the call is checked against: the peer's,
// or, when the peer is a trusted proxy, the right-most address of the
// client IP header that is not itself a trusted proxy (package clientip,
// which the agent shares). The zero Addr when the transport has no IP
// address.
func (c *config) clientIP(ctx context.Context) netip.Addr {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return netip.Addr{}
	}
	ip := clientip.FromNetAddr(p.Addr)
	if !ip.IsValid() || len(c.trusted) == 0 {
		return ip
	}
	return clientip.Resolve(c.trusted, ip, metadata.ValueFromIncomingContext(ctx, c.ipHeader))
}
