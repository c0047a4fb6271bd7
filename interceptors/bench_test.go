package interceptors_test

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/portcullis-dev/portcullis/client"
	"github.com/portcullis-dev/portcullis/interceptors"
)

// serveTCP serves a TestService on 127.0.0.1 with the given server
// options and returns a client.
func serveTCP(b *testing.B, opts ...grpc.ServerOption) testgrpc.TestServiceClient {
	b.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	g := grpc.NewServer(opts...)
	testgrpc.RegisterTestServiceServer(g, &testService{})
	go g.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		conn.Close()
		g.Stop()
	})
	return testgrpc.NewTestServiceClient(conn)
}

// benchOverhead measures a loopback unary call with and without the unary
// interceptor over c, interleaving the two so that both see the same
// machine state, and reports the median time per call of each, the
// overhead of the interceptor and the ratio. Medians, because a loaded
// machine adds outliers (scheduling, GC) that swamp a sub-microsecond
// difference in a mean.
func benchOverhead(b *testing.B, c interceptors.Checker, token string) {
	plain := serveTCP(b)
	guard, err := interceptors.ServerOptions(c)
	if err != nil {
		b.Fatal(err)
	}
	guarded := serveTCP(b, guard...)
	ctx := bearer(token)
	req := &testgrpc.SimpleRequest{}
	call := func(cl testgrpc.TestServiceClient) time.Duration {
		start := time.Now()
		if _, err := cl.UnaryCall(ctx, req); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	for range 200 { // warm up both connections and the token cache
		call(plain)
		call(guarded)
	}
	var tPlain, tGuarded []time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			tPlain = append(tPlain, call(plain))
			tGuarded = append(tGuarded, call(guarded))
		} else {
			tGuarded = append(tGuarded, call(guarded))
			tPlain = append(tPlain, call(plain))
		}
	}
	b.StopTimer()
	p, g := median(tPlain), median(tGuarded)
	b.ReportMetric(p, "plain-p50-ns")
	b.ReportMetric(g, "guarded-p50-ns")
	b.ReportMetric(100*(g-p)/p, "overhead-%")
	b.ReportMetric(g/p, "ratio")
}

func median(d []time.Duration) float64 {
	slices.Sort(d)
	return float64(d[len(d)/2].Nanoseconds())
}

// benchDirect measures the unary interceptor alone, called as grpc.Server
// calls it, with a handler that does nothing.
func benchDirect(b *testing.B, c interceptors.Checker, token string) {
	f := interceptors.UnaryServerInterceptor(c)
	ctx := serverContext(testgrpc.TestService_UnaryCall_FullMethodName, tcp("127.0.0.1:50000"), auth(token))
	info := &grpc.UnaryServerInfo{FullMethod: testgrpc.TestService_UnaryCall_FullMethodName}
	handler := func(context.Context, any) (any, error) { return nil, nil }
	req := &testgrpc.SimpleRequest{}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f(ctx, req, info, handler); err != nil {
			b.Fatal(err)
		}
	}
}

// oneSession admits one token; it costs a string comparison, so that a
// benchmark with it measures the interceptor's own cost.
type oneSession struct {
	token string
	s     *client.Session
}

func (o oneSession) Check(_ context.Context, token string, _ client.CheckInput) (*client.Session, error) {
	if token != o.token {
		return nil, client.ErrTokenInvalid
	}
	return o.s, nil
}

func (o oneSession) Track(*client.Session, client.CheckInput, func(error)) func() { return func() {} }

// BenchmarkInterceptorOverhead: a unary call over real TCP on 127.0.0.1
// through the unary interceptor with a real client.Mirror (synced with a
// real authority, the token cached after the first check) against the same
// call with no interceptor. "direct" is the interceptor alone.
func BenchmarkInterceptorOverhead(b *testing.B) {
	a := startAuthority(b)
	tok := a.login(b, "alice", "phone-1")
	b.Run("loopback", func(b *testing.B) { benchOverhead(b, a.mirror, tok) })
	b.Run("direct", func(b *testing.B) { benchDirect(b, a.mirror, tok) })
}

// BenchmarkInterceptorOverheadFake: the same with a Checker that costs
// nothing, to separate the interceptor's own cost from the check's.
func BenchmarkInterceptorOverheadFake(b *testing.B) {
	c := oneSession{"tok-alice", &client.Session{SessionID: "ses_1", TenantID: "public", UserID: "alice"}}
	b.Run("loopback", func(b *testing.B) { benchOverhead(b, c, c.token) })
	b.Run("direct", func(b *testing.B) { benchDirect(b, c, c.token) })
}
