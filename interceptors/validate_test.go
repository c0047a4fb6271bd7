package interceptors_test

import (
	"net/netip"
	"strings"
	"testing"

	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/portcullis-dev/portcullis/interceptors"
)

// TestClientIPForms: a client in an IPv6 form of an IPv4 address is checked
// as the IPv4 address, whether it is the peer or named by a trusted proxy,
// so that IPv4 bans match it (and the authority, which refuses these
// forms, accepts the address).
func TestClientIPForms(t *testing.T) {
	proxies := interceptors.WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8"))
	nat64Proxies := interceptors.WithTrustedProxies(netip.MustParsePrefix("64:ff9b::10.0.0.0/104"))
	for _, c := range []struct {
		name string
		opts []interceptors.Option
		peer string
		xff  string
		want string
	}{
		{"NAT64 peer", nil, "[64:ff9b::203.0.113.7]:4711", "", "203.0.113.7"},
		{"IPv4-compatible peer", nil, "[::203.0.113.7]:4711", "", "203.0.113.7"},
		{"6to4 peer", nil, "[2002:cb00:7107:1::5]:4711", "", "203.0.113.7"},
		{"IPv6 loopback stays IPv6", nil, "[::1]:4711", "", "::1"},
		{"other IPv6 stays IPv6", nil, "[2001:db8::7]:4711", "", "2001:db8::7"},
		{"NAT64 entry", []interceptors.Option{proxies}, "10.0.0.1:1", "64:ff9b::198.51.100.9", "198.51.100.9"},
		{"6to4 entry", []interceptors.Option{proxies}, "10.0.0.1:1", "[2002:c633:6409::1]:443", "198.51.100.9"},
		{"NAT64 proxy prefix", []interceptors.Option{nat64Proxies}, "[64:ff9b::10.1.2.3]:1", "198.51.100.9", "198.51.100.9"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeChecker()
			f.login("tok", "alice", "")
			var kv []string
			if c.xff != "" {
				kv = []string{"x-forwarded-for", c.xff}
			}
			if _, err := callUnary(f, c.opts, incoming{peer: tcp(c.peer), md: auth("tok", kv...)}); err != nil {
				t.Fatal(err)
			}
			if got, want := f.lastCheck(t).in.ClientIP, netip.MustParseAddr(c.want); got != want {
				t.Fatalf("checked with %v, want %v", got, want)
			}
		})
	}
}

// TestWithCapabilitiesRefusesBadNames: a capability name the authority
// would never accept in a ban ("POST", a Cyrillic "р", a space) stops
// start-up instead of leaving its method outside every capability ban.
func TestWithCapabilitiesRefusesBadNames(t *testing.T) {
	for _, name := range []string{"POST", "Post", "\u0440ost", "post comment", "", "post\u200b"} {
		t.Run(name, func(t *testing.T) {
			_, err := interceptors.ServerOptions(newFakeChecker(), interceptors.WithCapabilities(map[string]string{"/svc.S/Post": name}))
			if err == nil || !strings.Contains(err.Error(), "/svc.S/Post") {
				t.Fatalf("ServerOptions: %v, want an error naming the method", err)
			}
		})
	}
	if _, err := interceptors.ServerOptions(newFakeChecker(),
		interceptors.WithCapabilities(map[string]string{"/svc.S/Post": "post", "/svc.S/Watch": "events:watch"})); err != nil {
		t.Fatal(err)
	}
}

// TestServerOptionsRefusesMistakes: each configuration mistake fails
// ServerOptions with an error that names it, instead of a refused (or
// silently unchecked) call later.
func TestServerOptionsRefusesMistakes(t *testing.T) {
	services := interceptors.WithServices(&testgrpc.TestService_ServiceDesc)
	for _, c := range []struct {
		name    string
		checker interceptors.Checker
		opts    []interceptors.Option
		want    string
	}{
		{"nil checker", nil, nil, "nil Checker"},
		{"strict without catch-up", newFakeChecker(), []interceptors.Option{
			interceptors.WithStrictMethods(testgrpc.TestService_UnaryCall_FullMethodName)}, "cannot catch up"},
		{"nil sessions client", newFakeChecker(), []interceptors.Option{
			interceptors.WithAuthorityMethods(nil, testgrpc.TestService_UnaryCall_FullMethodName)}, "nil SessionServiceClient"},
		{"public and capability", newFakeChecker(), []interceptors.Option{
			interceptors.WithPublicMethods(testgrpc.TestService_UnaryCall_FullMethodName),
			interceptors.WithCapabilities(map[string]string{testgrpc.TestService_UnaryCall_FullMethodName: "post"})}, "is public"},
		{"unknown public method", newFakeChecker(), []interceptors.Option{services,
			interceptors.WithPublicMethods("/grpc.testing.TestService/EmptyCal")}, "WithPublicMethods: /grpc.testing.TestService/EmptyCal is no method"},
		{"unknown capability method", newFakeChecker(), []interceptors.Option{services,
			interceptors.WithCapabilities(map[string]string{"/grpc.testing.TestService/Unary": "post"})}, "WithCapabilities: /grpc.testing.TestService/Unary is no method"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := interceptors.ServerOptions(c.checker, c.opts...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ServerOptions: %v, want an error containing %q", err, c.want)
			}
		})
	}
	// The same options, right, pass: every name is a method of the service.
	if _, err := interceptors.ServerOptions(newFakeChecker(), services,
		interceptors.WithPublicMethods(testgrpc.TestService_EmptyCall_FullMethodName),
		interceptors.WithCapabilities(map[string]string{testgrpc.TestService_FullDuplexCall_FullMethodName: "chat"})); err != nil {
		t.Fatal(err)
	}
}
