package agent

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/portcullis-dev/portcullis/client"
	"github.com/portcullis-dev/portcullis/clientip"
	"github.com/portcullis-dev/portcullis/rpcerr"
)

// Mirror is what the agent decides with: *client.Mirror.
type Mirror interface {
	// Check is client.Mirror.Check: the one check every front door and
	// the interceptors share.
	Check(ctx context.Context, token string, in client.CheckInput) (*client.Session, error)
	// Stats gives readiness (synced, staleness) and metrics.
	Stats() client.MirrorStats
}

var _ Mirror = (*client.Mirror)(nil)

// Headers is read-only access to a request's headers, by canonical name
// (http.Header has these methods; ext_authz adapts Envoy's map).
type Headers interface {
	Get(name string) string
	Values(name string) []string
}

// Request is what a front door knows of the request to decide: the
// original method and URI (not those of the request to the agent), the
// address of the peer that sent it, and its headers.
type Request struct {
	Method string
	URI    string // path and query, as sent ($request_uri)
	Peer   netip.Addr
	Header Headers
}

// Decision is the agent's answer for one request.
type Decision struct {
	// Err is nil when the request may proceed; else the refusal, an error
	// client.Status maps (a *client.BanError, client.ErrTokenInvalid, ...).
	Err error
	// Public: the request matched a public route and was not checked.
	Public bool
	// Session is the verified session of an allowed, non-public request.
	// Shared between the checks of one token: do not modify it.
	Session *client.Session
	// Input is what the token was checked with: client IP, device, and
	// the route's capability.
	Input client.CheckInput
}

// Decide is the one decision of every front door (forward-auth, ext_authz):
// the route (public, or the capability it needs), the client address
// (package clientip, as the interceptors), the device header, then the
// bearer token checked by the mirror, exactly as the interceptors check a
// call.
func (a *Agent) Decide(ctx context.Context, r Request) Decision {
	return decide(ctx, a, a.cfg.Load(), r.Method, r.URI, r.Peer, publicHeaders{r.Header})
}

// decide is Decide for the front doors, which read headers by names
// already in their form (headername.go), with the configuration cfg the
// door loaded (once per request: a door that needs it before deciding
// sees the same one).
// Generic rather than taking the interface, so that no header adapter is
// boxed (allocated) per call.
func decide[H headerSource](ctx context.Context, a *Agent, cfg *compiled, method, uri string, peer netip.Addr, hdr H) Decision {
	p, ok := cleanPath(uri)
	if !ok {
		return Decision{Err: fmt.Errorf("%w: the request URI %q is not an absolute path", rpcerr.ErrInvalidArgument, uri)}
	}
	if !isUpper(method) {
		method = strings.ToUpper(method)
	}
	for i := range cfg.public {
		if cfg.public[i].matches(method, p) {
			return Decision{Public: true}
		}
	}
	var d Decision
	for i := range cfg.routes {
		if cfg.routes[i].matches(method, p) {
			d.Input.Capability = cfg.routes[i].capability
			break
		}
	}
	d.Input.ClientIP = peer
	if !peer.Is4() { // an IPv4 address is normal already (and has no zone)
		d.Input.ClientIP = clientip.Normalize(peer)
	}
	// The forwarded header is read only from a trusted peer: from any
	// other it is the client's to forge, and not worth a lookup.
	if trustedPeer(cfg.trusted, d.Input.ClientIP) {
		d.Input.ClientIP = clientip.Resolve(cfg.trusted, d.Input.ClientIP, hdr.clientIPs(cfg.ipHeader))
	}
	if cfg.deviceHeader.canon != "" {
		d.Input.DeviceID = hdr.device(cfg.deviceHeader)
	}
	tok, ok := bearer(hdr.authorization())
	if !ok {
		d.Err = fmt.Errorf(`%w: no access token; send it as "Authorization: Bearer <token>"`, client.ErrTokenInvalid)
		return d
	}
	d.Session, d.Err = a.mirror.Check(ctx, tok, d.Input)
	return d
}

// trustedPeer reports whether the (normalized) peer address is one of the
// trusted proxies.
func trustedPeer(trusted []netip.Prefix, peer netip.Addr) bool {
	if !peer.IsValid() {
		return false
	}
	for _, p := range trusted {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// bearer returns the token of an "Authorization: Bearer <token>" value;
// the scheme is case-insensitive (RFC 7235).
func bearer(v string) (string, bool) {
	const scheme, usual = "bearer ", "Bearer "
	if len(v) <= len(scheme) {
		return "", false
	}
	// The usual spelling is compared exactly first: a few bytes' equality,
	// cheaper than case folding.
	if v[:len(usual)] != usual && !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", false
	}
	tok := strings.TrimSpace(v[len(scheme):])
	return tok, tok != ""
}

func isUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}
