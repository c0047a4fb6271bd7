package interceptors

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"google.golang.org/grpc"

	"github.com/portcullis-dev/portcullis/clientip"
	"github.com/portcullis-dev/portcullis/ident"
)

// DefaultClientIPHeader is the metadata key read for the client address
// when the peer is a trusted proxy.
const DefaultClientIPHeader = "x-forwarded-for"

// Option configures the server interceptors.
type Option func(*config)

// methodKey is a full method name split like go-grpc-middleware's CallMeta,
// so that the selector can look it up without formatting a string.
type methodKey struct{ service, method string }

func splitMethod(fullMethod string) methodKey {
	fullMethod = strings.TrimPrefix(fullMethod, "/")
	if s, m, ok := strings.Cut(fullMethod, "/"); ok {
		return methodKey{s, m}
	}
	return methodKey{"unknown", "unknown"}
}

type config struct {
	public       map[methodKey]struct{}
	capabilities map[string]string
	trusted      []netip.Prefix
	ipHeader     string
	deviceKey    string
	log          *slog.Logger
	consistency  consistencyConfig // consistency.go
	services     []*grpc.ServiceDesc
	errs         []error // configuration mistakes, reported by validate
}

func newConfig(opts []Option) *config {
	c := &config{
		public:       map[methodKey]struct{}{},
		capabilities: map[string]string{},
		ipHeader:     DefaultClientIPHeader,
		log:          slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// WithPublicMethods names methods (full names such as
// grpc_health_v1.Health_Check_FullMethodName) that skip the check: no
// token is needed and no session is in their context. Repeatable.
func WithPublicMethods(fullMethodNames ...string) Option {
	return func(c *config) {
		for _, m := range fullMethodNames {
			c.public[splitMethod(m)] = struct{}{}
		}
	}
}

// WithCapabilities maps full method names to the capability each needs
// ("post", "chat", ...). A capability ban refuses the mapped methods with
// CAPABILITY_RESTRICTED and leaves the others usable; an unmapped method
// needs no capability. Repeatable; later entries win.
//
// Capability names are compared byte for byte, and the authority accepts
// only lower-case ASCII names ([a-z0-9][a-z0-9._:-]{0,63}, see
// ident.CheckName) in bans. ServerOptions fails on any other name:
// "POST" mapped here could never be matched by a ban, and the method would
// silently escape every capability ban; the mistake must stop start-up.
func WithCapabilities(methodToCapability map[string]string) Option {
	return func(c *config) {
		for m, capability := range methodToCapability {
			if err := ident.CheckName(capability); err != nil {
				c.errs = append(c.errs, fmt.Errorf("WithCapabilities: capability %q of %s %w", capability, m, err))
			}
			c.capabilities[m] = capability
		}
	}
}

// WithTrustedProxies names the proxies and load balancers whose client IP
// header is believed. A call from a peer outside these prefixes is checked
// against the peer's own address, whatever it sends. Repeatable.
// ServerOptions fails on an invalid prefix: a misconfigured proxy list must
// not start.
func WithTrustedProxies(prefixes ...netip.Prefix) Option {
	return func(c *config) {
		for _, p := range prefixes {
			// A prefix of an IPv6 form of IPv4 is the IPv4 prefix, as
			// peers are named (package clientip).
			q, ok := clientip.Prefix(p)
			if !ok {
				c.errs = append(c.errs, fmt.Errorf("WithTrustedProxies: invalid prefix %v", p))
				continue
			}
			c.trusted = append(c.trusted, q)
		}
	}
}

// WithClientIPHeader sets the metadata key that trusted proxies put the
// client address in (default x-forwarded-for: a comma-separated list to
// which each proxy appends the address it received the call from;
// x-real-ip, holding one address, works too).
func WithClientIPHeader(name string) Option {
	return func(c *config) { c.ipHeader = strings.ToLower(name) }
}

// WithDeviceIDMetadata reads a device id from the metadata key name and
// has it checked against device bans (and tracked, for streams) in
// addition to the token's did claim, which is checked in any case.
func WithDeviceIDMetadata(key string) Option {
	return func(c *config) { c.deviceKey = strings.ToLower(key) }
}

// WithLogger logs refused calls (debug) and streams ended by a ban or
// revocation (info). The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}
