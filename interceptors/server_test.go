package interceptors_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/interceptors"
)

// transportStream names the method of a call made without a server.
type transportStream struct{ method string }

func (s transportStream) Method() string             { return s.method }
func (transportStream) SetHeader(metadata.MD) error  { return nil }
func (transportStream) SendHeader(metadata.MD) error { return nil }
func (transportStream) SetTrailer(metadata.MD) error { return nil }

// incoming is what a server sees of a call.
type incoming struct {
	method string
	peer   net.Addr
	md     metadata.MD
}

// admitted is what a handler sees.
type admitted struct {
	session  *client.Session
	clientIP netip.Addr
	ipOK     bool
}

// callUnary runs the unary interceptor on a call as grpc.Server would.
func callUnary(c interceptors.Checker, opts []interceptors.Option, in incoming) (admitted, error) {
	if in.method == "" {
		in.method = testgrpc.TestService_UnaryCall_FullMethodName
	}
	ctx := serverContext(in.method, in.peer, in.md)
	var got admitted
	_, err := interceptors.UnaryServerInterceptor(c, opts...)(ctx, &testgrpc.SimpleRequest{},
		&grpc.UnaryServerInfo{FullMethod: in.method},
		func(ctx context.Context, _ any) (any, error) {
			var ok bool
			got.session, ok = interceptors.SessionFromContext(ctx)
			if !ok {
				got.session = nil
			}
			got.clientIP, got.ipOK = interceptors.ClientIPFromContext(ctx)
			return &testgrpc.SimpleResponse{}, nil
		})
	return got, err
}

// serverContext is the context grpc.Server gives a call of method from
// addr (nil: none) with metadata md.
func serverContext(method string, addr net.Addr, md metadata.MD) context.Context {
	ctx := grpc.NewContextWithServerTransportStream(context.Background(), transportStream{method})
	if addr != nil {
		ctx = peer.NewContext(ctx, &peer.Peer{Addr: addr})
	}
	return metadata.NewIncomingContext(ctx, md)
}

func tcp(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }

func auth(tok string, kv ...string) metadata.MD {
	return metadata.Pairs(append([]string{"authorization", "Bearer " + tok}, kv...)...)
}

func TestUnaryAdmitsAndCarriesSession(t *testing.T) {
	f := newFakeChecker()
	want := f.login("tok-alice", "alice", "phone-1")
	got, err := callUnary(f, nil, incoming{peer: tcp("203.0.113.7:4711"), md: auth("tok-alice")})
	if err != nil {
		t.Fatal(err)
	}
	if got.session != want {
		t.Fatalf("session in context %+v, want %+v", got.session, want)
	}
	if !got.ipOK || got.clientIP != netip.MustParseAddr("203.0.113.7") {
		t.Fatalf("client IP in context %v %v", got.clientIP, got.ipOK)
	}
	c := f.lastCheck(t)
	if c.token != "tok-alice" || c.in != (client.CheckInput{ClientIP: netip.MustParseAddr("203.0.113.7")}) {
		t.Fatalf("checked %+v", c)
	}
}

func TestMissingOrMalformedToken(t *testing.T) {
	f := newFakeChecker()
	f.login("tok-alice", "alice", "")
	for name, md := range map[string]metadata.MD{
		"none":         nil,
		"basic":        metadata.Pairs("authorization", "Basic dG9rLWFsaWNl"),
		"no scheme":    metadata.Pairs("authorization", "tok-alice"),
		"other header": metadata.Pairs("x-token", "tok-alice"),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := callUnary(f, nil, incoming{md: md})
			wantStatus(t, err, codes.Unauthenticated, "TOKEN_INVALID")
			if !strings.Contains(err.Error(), "authorization: Bearer") {
				t.Fatalf("message %q does not say how to send the token", err)
			}
		})
	}
	if n := f.numChecks(); n != 0 {
		t.Fatalf("the checker ran %d times without a token", n)
	}
	// The scheme is case-insensitive.
	if _, err := callUnary(f, nil, incoming{md: metadata.Pairs("authorization", "bearer tok-alice")}); err != nil {
		t.Fatal(err)
	}
}

// TestRefusalIsTheClientStatus: whatever the checker refuses with reaches
// the caller as client.Status made it.
func TestRefusalIsTheClientStatus(t *testing.T) {
	f := newFakeChecker()
	expire := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		err    error
		code   codes.Code
		reason string
		meta   map[string]string
	}{
		{&client.BanError{Reason: pb.ErrorReason_USER_BANNED, BanID: "ban_1", ExpireTime: expire},
			codes.PermissionDenied, "USER_BANNED", map[string]string{"ban_id": "ban_1", "expire_time": "2026-11-30T12:00:00Z"}},
		{&client.BanError{Reason: pb.ErrorReason_IP_BANNED, BanID: "ban_2"},
			codes.PermissionDenied, "IP_BANNED", map[string]string{"ban_id": "ban_2", "expire_time": ""}},
		{&client.BanError{Reason: pb.ErrorReason_CAPABILITY_RESTRICTED, BanID: "ban_3", Capability: "post"},
			codes.PermissionDenied, "CAPABILITY_RESTRICTED", map[string]string{"ban_id": "ban_3", "expire_time": "", "capability": "post"}},
		{fmt.Errorf("check: %w", client.ErrTokenExpired), codes.Unauthenticated, "TOKEN_EXPIRED", nil},
		{client.ErrTokenInvalid, codes.Unauthenticated, "TOKEN_INVALID", nil},
		{client.ErrSessionRevoked, codes.Unauthenticated, "SESSION_REVOKED", nil},
		{client.ErrMirrorStale, codes.Unavailable, "MIRROR_STALE", nil},
	} {
		f.refuseWith("tok", c.err)
		_, err := callUnary(f, nil, incoming{md: auth("tok")})
		info := wantStatus(t, err, c.code, c.reason)
		if c.meta != nil && !maps.Equal(info.GetMetadata(), c.meta) {
			t.Fatalf("metadata %v, want %v", info.GetMetadata(), c.meta)
		}
		if c.code == codes.PermissionDenied && !errors.Is(client.FromStatus(err), client.ErrBanned) {
			t.Fatalf("%v does not match client.ErrBanned on the client side", err)
		}
		if want := client.Status(c.err); err.Error() != want.Error() {
			t.Fatalf("got %v, want client.Status's %v", err, want)
		}
	}
}

func TestPublicMethodsSkipTheCheck(t *testing.T) {
	f := newFakeChecker()
	opts := []interceptors.Option{interceptors.WithPublicMethods(
		grpc_health_v1.Health_Check_FullMethodName, testgrpc.TestService_EmptyCall_FullMethodName)}
	for _, m := range []string{grpc_health_v1.Health_Check_FullMethodName, testgrpc.TestService_EmptyCall_FullMethodName} {
		got, err := callUnary(f, opts, incoming{method: m, peer: tcp("203.0.113.7:1")})
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		if got.session != nil || got.ipOK {
			t.Fatalf("%s: a public method's context carries %+v", m, got)
		}
	}
	if n := f.numChecks(); n != 0 {
		t.Fatalf("the checker ran %d times for public methods", n)
	}
	_, err := callUnary(f, opts, incoming{method: testgrpc.TestService_UnaryCall_FullMethodName})
	wantStatus(t, err, codes.Unauthenticated, "TOKEN_INVALID")
}

func TestCapabilities(t *testing.T) {
	f := newFakeChecker()
	f.login("tok", "alice", "")
	opts := []interceptors.Option{
		interceptors.WithCapabilities(map[string]string{testgrpc.TestService_UnaryCall_FullMethodName: "post"}),
		interceptors.WithCapabilities(map[string]string{testgrpc.TestService_CacheableUnaryCall_FullMethodName: "comment"}),
	}
	for m, want := range map[string]string{
		testgrpc.TestService_UnaryCall_FullMethodName:          "post",
		testgrpc.TestService_CacheableUnaryCall_FullMethodName: "comment",
		testgrpc.TestService_EmptyCall_FullMethodName:          "",
	} {
		if _, err := callUnary(f, opts, incoming{method: m, md: auth("tok")}); err != nil {
			t.Fatal(err)
		}
		if got := f.lastCheck(t).in.Capability; got != want {
			t.Fatalf("%s checked with capability %q, want %q", m, got, want)
		}
	}
}

func TestDeviceID(t *testing.T) {
	f := newFakeChecker()
	f.login("tok", "alice", "phone-from-token")
	withKey := []interceptors.Option{interceptors.WithDeviceIDMetadata("X-Device-ID")}
	for _, c := range []struct {
		name string
		opts []interceptors.Option
		md   metadata.MD
		want string
	}{
		{"metadata", withKey, auth("tok", "x-device-id", "tablet-7"), "tablet-7"},
		// "": the mirror uses the token's did claim.
		{"not sent", withKey, auth("tok"), ""},
		{"not configured", nil, auth("tok", "x-device-id", "tablet-7"), ""},
	} {
		if _, err := callUnary(f, c.opts, incoming{md: c.md}); err != nil {
			t.Fatal(err)
		}
		if got := f.lastCheck(t).in.DeviceID; got != c.want {
			t.Fatalf("%s: checked with device %q, want %q", c.name, got, c.want)
		}
	}
}

func TestClientIP(t *testing.T) {
	proxies := interceptors.WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"))
	realIP := interceptors.WithClientIPHeader("X-Real-IP")
	mapped := interceptors.WithTrustedProxies(netip.MustParsePrefix("::ffff:192.168.0.0/112"))
	xff := func(v ...string) []string {
		var kv []string
		for _, s := range v {
			kv = append(kv, "x-forwarded-for", s)
		}
		return kv
	}
	for _, c := range []struct {
		name string
		opts []interceptors.Option
		peer net.Addr
		kv   []string
		want string // "" = no address
	}{
		{"peer", nil, tcp("203.0.113.7:4711"), nil, "203.0.113.7"},
		{"ipv6 peer", nil, tcp("[2001:db8::7]:4711"), nil, "2001:db8::7"},
		{"ipv4-mapped peer", nil, tcp("[::ffff:203.0.113.7]:4711"), nil, "203.0.113.7"},
		{"zoned peer", nil, tcp("[fe80::1%eth0]:4711"), nil, "fe80::1"},
		{"no trusted proxies: header ignored", nil, tcp("203.0.113.7:1"), xff("198.51.100.9"), "203.0.113.7"},
		{"untrusted peer sending the header", []interceptors.Option{proxies}, tcp("203.0.113.7:1"), xff("198.51.100.9"), "203.0.113.7"},
		{"trusted proxy", []interceptors.Option{proxies}, tcp("10.0.0.1:1"), xff("198.51.100.9"), "198.51.100.9"},
		{"trusted proxy, no header", []interceptors.Option{proxies}, tcp("10.0.0.1:1"), nil, "10.0.0.1"},
		{"right-most untrusted entry", []interceptors.Option{proxies}, tcp("10.0.0.1:1"),
			xff("192.0.2.66, 198.51.100.9, 10.1.2.3"), "198.51.100.9"},
		{"several header values are one list", []interceptors.Option{proxies}, tcp("10.0.0.1:1"),
			xff("192.0.2.66, 198.51.100.9", "10.1.2.3"), "198.51.100.9"},
		{"ipv6 proxy and entries with ports", []interceptors.Option{proxies}, tcp("[fd00::1]:1"),
			xff("[2001:db8::9]:443, 10.1.2.3:80"), "2001:db8::9"},
		{"ipv4-mapped entry", []interceptors.Option{proxies}, tcp("10.0.0.1:1"), xff("::ffff:198.51.100.9"), "198.51.100.9"},
		{"only proxies: the left-most", []interceptors.Option{proxies}, tcp("10.0.0.1:1"), xff("10.9.9.9, 10.1.2.3"), "10.9.9.9"},
		{"malformed entry: the last trusted hop", []interceptors.Option{proxies}, tcp("10.0.0.1:1"),
			xff("198.51.100.9, garbage, 10.1.2.3"), "10.1.2.3"},
		{"empty header", []interceptors.Option{proxies}, tcp("10.0.0.1:1"), xff(""), "10.0.0.1"},
		{"other header", []interceptors.Option{proxies, realIP}, tcp("10.0.0.1:1"),
			append(xff("192.0.2.1"), "x-real-ip", "198.51.100.9"), "198.51.100.9"},
		{"ipv4-mapped proxy prefix", []interceptors.Option{mapped}, tcp("192.168.0.5:1"), xff("198.51.100.9"), "198.51.100.9"},
		{"no IP transport", nil, fakeAddr("bufconn"), nil, ""},
		{"no peer", nil, nil, nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeChecker()
			f.login("tok", "alice", "")
			got, err := callUnary(f, c.opts, incoming{peer: c.peer, md: auth("tok", c.kv...)})
			if err != nil {
				t.Fatal(err)
			}
			checked := f.lastCheck(t).in.ClientIP
			if c.want == "" {
				if checked.IsValid() || got.ipOK {
					t.Fatalf("checked with %v (context %v), want no address", checked, got.clientIP)
				}
				return
			}
			if want := netip.MustParseAddr(c.want); checked != want || got.clientIP != want {
				t.Fatalf("checked with %v (context %v), want %v", checked, got.clientIP, want)
			}
		})
	}
}

func TestWithTrustedProxiesRefusesAnInvalidPrefix(t *testing.T) {
	_, err := interceptors.ServerOptions(newFakeChecker(), interceptors.WithTrustedProxies(netip.Prefix{}))
	if err == nil || !strings.Contains(err.Error(), "invalid prefix") {
		t.Fatalf("ServerOptions: %v, want an invalid prefix error", err)
	}
}

type fakeAddr string

func (a fakeAddr) Network() string { return string(a) }
func (a fakeAddr) String() string  { return string(a) }

// TestUnaryOverTheWire: the same through a real grpc.Server.
func TestUnaryOverTheWire(t *testing.T) {
	f := newFakeChecker()
	want := f.login("tok-alice", "alice", "")
	var got *client.Session
	c := serve(t, f, &testService{unary: func(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
		got, _ = interceptors.SessionFromContext(ctx)
		return &testgrpc.SimpleResponse{}, nil
	}}, []interceptors.Option{interceptors.WithPublicMethods(testgrpc.TestService_EmptyCall_FullMethodName)})
	ctx := withTimeout(t, bearer("tok-alice"))
	if _, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{}); err != nil || got != want {
		t.Fatalf("UnaryCall: %v, session %+v", err, got)
	}
	_, err := c.UnaryCall(withTimeout(t, context.Background()), &testgrpc.SimpleRequest{})
	wantStatus(t, err, codes.Unauthenticated, "TOKEN_INVALID")
	if _, err := c.EmptyCall(withTimeout(t, context.Background()), &testgrpc.Empty{}); err != nil {
		t.Fatalf("public EmptyCall: %v", err)
	}
}

// overridingService implements auth.ServiceAuthFuncOverride.
type overridingService struct{ testService }

func (*overridingService) AuthFuncOverride(ctx context.Context, _ string) (context.Context, error) {
	return ctx, nil
}

// TestAuthFuncOverrideReplacesTheCheck pins the go-grpc-middleware
// convention the interceptors inherit (see the package documentation): a
// service implementing AuthFuncOverride is not checked, and its calls carry
// no session.
func TestAuthFuncOverrideReplacesTheCheck(t *testing.T) {
	f := newFakeChecker()
	var hadSession bool
	svc := &overridingService{testService{unary: func(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
		_, hadSession = interceptors.SessionFromContext(ctx)
		return &testgrpc.SimpleResponse{}, nil
	}}}
	ctx := serverContext(testgrpc.TestService_UnaryCall_FullMethodName, nil, nil)
	_, err := interceptors.UnaryServerInterceptor(f)(ctx, &testgrpc.SimpleRequest{},
		&grpc.UnaryServerInfo{Server: svc, FullMethod: testgrpc.TestService_UnaryCall_FullMethodName},
		func(ctx context.Context, req any) (any, error) {
			return svc.UnaryCall(ctx, req.(*testgrpc.SimpleRequest))
		})
	if err != nil || hadSession || f.numChecks() != 0 {
		t.Fatalf("err %v, session %v, checks %d", err, hadSession, f.numChecks())
	}
}
