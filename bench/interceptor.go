package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/interceptors"
)

// interceptorRow is the cost per unary call of the server interceptor
// (interceptors.UnaryServerInterceptor over a synced client.Mirror), one
// caller on loopback TCP, against the same service without it.
type interceptorRow struct {
	calls int // per variant
	// Mean time per call of each variant:
	bare      time.Duration // no interceptor, no token
	control   time.Duration // no interceptor, the first-seen calls' tokens sent
	cached    time.Duration // interceptor, the same valid token every call
	firstSeen time.Duration // interceptor, a token never checked before every call
	// cacheGrowth is how many tokens the mirror's cache gained during the
	// first-seen calls: each is a token the mirror verified (signature and
	// all) and cached. It equals calls unless an insert evicted another
	// token from a full set of the cache.
	cacheGrowth int
}

// echo is the handler of both services: it answers with the caller's
// user, which only the interceptor's session provides.
type echo struct {
	testgrpc.UnimplementedTestServiceServer
}

func (echo) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	var user string
	if s, ok := interceptors.SessionFromContext(ctx); ok {
		user = s.UserID
	}
	return &testgrpc.SimpleResponse{Username: user}, nil
}

// interceptorBench is the two services, the mirror behind the protected
// one and a client connection to each.
type interceptorBench struct {
	a             *authorityEnv
	admin         *client.Client
	mirror        *client.Mirror
	bare, guarded testgrpc.TestServiceClient
	cachedToken   string
	closers       []func()
	tokensCreated int
}

func (b *interceptorBench) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}

// newInterceptorBench starts a mirror of a, the protected and the bare
// service on loopback TCP, and checks that the protected one really
// checks: a valid token is admitted with its user, and refused once its
// user is banned.
func newInterceptorBench(a *authorityEnv) (b *interceptorBench, err error) {
	b = &interceptorBench{a: a}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	ctx := context.Background()
	if b.admin, err = a.dial(); err != nil {
		return nil, err
	}
	b.closers = append(b.closers, func() { b.admin.Close() })
	mc, err := a.dial()
	if err != nil {
		return nil, err
	}
	b.closers = append(b.closers, func() { mc.Close() })
	// A production mirror: the default cache size (100,000 tokens).
	b.mirror = client.NewMirror(mc, client.MirrorOptions{Logger: slog.New(slog.DiscardHandler)})
	mctx, cancel := context.WithCancel(ctx)
	mdone := make(chan struct{})
	go func() { defer close(mdone); b.mirror.Run(mctx) }()
	b.closers = append(b.closers, func() { cancel(); <-mdone })
	sctx, scancel := context.WithTimeout(ctx, time.Minute)
	defer scancel()
	if err := b.mirror.WaitSynced(sctx); err != nil {
		return nil, fmt.Errorf("mirror sync: %w", err)
	}

	serve := func(opts ...grpc.ServerOption) (testgrpc.TestServiceClient, error) {
		g := grpc.NewServer(opts...)
		testgrpc.RegisterTestServiceServer(g, echo{})
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		go g.Serve(lis)
		b.closers = append(b.closers, g.Stop)
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, err
		}
		b.closers = append(b.closers, func() { conn.Close() })
		return testgrpc.NewTestServiceClient(conn), nil
	}
	if b.bare, err = serve(); err != nil {
		return nil, err
	}
	if b.guarded, err = serve(grpc.ChainUnaryInterceptor(interceptors.UnaryServerInterceptor(b.mirror))); err != nil {
		return nil, err
	}

	s, err := b.admin.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{UserId: "ic-cached"})
	if err != nil {
		return nil, err
	}
	b.cachedToken = s.GetAccessToken()
	if err := b.checks(ctx); err != nil {
		return nil, fmt.Errorf("the interceptor does not check: %w", err)
	}
	return b, nil
}

// checks verifies that the guarded service admits a valid token with its
// user, refuses a missing token, refuses a banned user's token once the
// mirror has the ban, and that the bare one checks nothing.
func (b *interceptorBench) checks(ctx context.Context) error {
	r, err := b.guarded.UnaryCall(interceptors.WithToken(ctx, b.cachedToken), &testgrpc.SimpleRequest{})
	if err != nil || r.GetUsername() != "ic-cached" {
		return fmt.Errorf("valid token: user %q, error %v; want ic-cached admitted", r.GetUsername(), err)
	}
	if _, err := b.guarded.UnaryCall(ctx, &testgrpc.SimpleRequest{}); status.Code(err) != codes.Unauthenticated {
		return fmt.Errorf("no token: %v; want Unauthenticated", err)
	}
	if r, err := b.bare.UnaryCall(ctx, &testgrpc.SimpleRequest{}); err != nil || r.GetUsername() != "" {
		return fmt.Errorf("bare service: user %q, error %v; want an anonymous success", r.GetUsername(), err)
	}
	s, err := b.admin.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{UserId: "ic-banned"})
	if err != nil {
		return err
	}
	banned := interceptors.WithToken(ctx, s.GetAccessToken())
	if _, err := b.guarded.UnaryCall(banned, &testgrpc.SimpleRequest{}); err != nil {
		return fmt.Errorf("ic-banned before the ban: %w", err)
	}
	if _, err := b.admin.Bans.CreateBan(ctx, &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "ic-banned"}}}); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := b.mirror.CatchUp(cctx); err != nil {
		return err
	}
	_, err = b.guarded.UnaryCall(banned, &testgrpc.SimpleRequest{})
	if !errors.Is(client.FromStatus(err), client.ErrUserBanned) {
		return fmt.Errorf("ic-banned after the ban: %v; want USER_BANNED", err)
	}
	return nil
}

// freshTokens creates n sessions and returns their access tokens, none
// of which the mirror has seen.
func (b *interceptorBench) freshTokens(n int) ([]string, error) {
	ctx := context.Background()
	tokens := make([]string, n)
	base := b.tokensCreated
	b.tokensCreated += n
	err := parallel(n, 64, func(i int) error {
		s, err := b.admin.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{UserId: fmt.Sprintf("ic-%d", base+i)})
		tokens[i] = s.GetAccessToken()
		return err
	})
	return tokens, err
}

// interceptorChunk is how many calls of one variant run back to back;
// rounds of one chunk per variant, in a rotating order, spread drift
// (other load on the machine, GC, the CPU's clock) over all variants.
const interceptorChunk = 100

// measure times calls calls of each variant and checks that each
// first-seen call was a verification the mirror cached.
func (b *interceptorBench) measure(calls int) (interceptorRow, error) {
	row := interceptorRow{calls: calls}
	warm := min(calls, interceptorChunk)
	tokens, err := b.freshTokens(warm + calls)
	if err != nil {
		return row, fmt.Errorf("CreateSession: %w", err)
	}
	ctx := context.Background()
	req := &testgrpc.SimpleRequest{}
	cached := interceptors.WithToken(ctx, b.cachedToken)
	var next, nextControl int // the next fresh token of first-seen and of control
	variants := []struct {
		d    *time.Duration
		call func() error
	}{
		{&row.bare, func() error { _, err := b.bare.UnaryCall(ctx, req); return err }},
		{&row.control, func() error {
			_, err := b.bare.UnaryCall(interceptors.WithToken(ctx, tokens[nextControl]), req)
			nextControl++
			return err
		}},
		{&row.cached, func() error { _, err := b.guarded.UnaryCall(cached, req); return err }},
		{&row.firstSeen, func() error {
			_, err := b.guarded.UnaryCall(interceptors.WithToken(ctx, tokens[next]), req)
			next++
			return err
		}},
	}
	for _, v := range variants { // warm-up, untimed: connections, pools, the first-seen path
		for range warm {
			if err := v.call(); err != nil {
				return row, err
			}
		}
	}
	before := b.mirror.Stats().Cached
	for round := 0; round*interceptorChunk < calls; round++ {
		k := min(interceptorChunk, calls-round*interceptorChunk)
		for j := range variants {
			v := variants[(round+j)%len(variants)]
			start := time.Now()
			for range k {
				if err := v.call(); err != nil {
					return row, err
				}
			}
			*v.d += time.Since(start)
		}
	}
	row.cacheGrowth = b.mirror.Stats().Cached - before
	if next != warm+calls || nextControl != warm+calls {
		return row, fmt.Errorf("used %d and %d fresh tokens, want %d", next, nextControl, warm+calls)
	}
	for _, v := range variants {
		*v.d /= time.Duration(calls)
	}
	return row, nil
}

// interceptorRows sets the services up once and measures runs times,
// each run with its own fresh tokens.
func interceptorRows(a *authorityEnv, calls, runs int) ([]interceptorRow, error) {
	b, err := newInterceptorBench(a)
	if err != nil {
		return nil, err
	}
	defer b.close()
	var rows []interceptorRow
	for range runs {
		r, err := b.measure(calls)
		if err != nil {
			return nil, err
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// printInterceptor prints the variants with their difference and ratio to
// bare: medians over the runs of each run's own values (the variants of a
// run were interleaved, so a run's difference is the paired one).
func printInterceptor(out io.Writer, rows []interceptorRow) {
	h, rule := runsHeader(len(rows), "ns/call")
	fmt.Fprintf(out, "| unary call on loopback TCP, one caller | calls | ns/call | minus bare | / bare |%s\n| --- | ---: | ---: | ---: | ---: |%s\n", h, rule)
	variants := []struct {
		name string
		get  func(interceptorRow) time.Duration
	}{
		{"bare (no interceptor, no token)", func(r interceptorRow) time.Duration { return r.bare }},
		{"bare, a fresh token header sent (control for first-seen)", func(r interceptorRow) time.Duration { return r.control }},
		{"interceptor, cached token (same token every call)", func(r interceptorRow) time.Duration { return r.cached }},
		{"interceptor, first-seen token (a new token every call)", func(r interceptorRow) time.Duration { return r.firstSeen }},
	}
	for _, v := range variants {
		var ns, diff, ratio []float64
		for _, r := range rows {
			ns = append(ns, float64(v.get(r).Nanoseconds()))
			diff = append(diff, float64((v.get(r) - r.bare).Nanoseconds()))
			ratio = append(ratio, float64(v.get(r))/float64(r.bare))
		}
		each := eachRun(ns, func(x float64) string { return fmt.Sprintf("%.0f", x) })
		fmt.Fprintf(out, "| %s | %d | %.0f | %+.0f ns | %.2f |%s\n", v.name, rows[0].calls, median(ns), median(diff), median(ratio), runsCell(each))
	}
	growth := eachRun(rows, func(r interceptorRow) string { return fmt.Sprint(r.cacheGrowth) })
	if growth == "" {
		growth = fmt.Sprint(rows[0].cacheGrowth)
	}
	fmt.Fprintf(out, "(first-seen: the mirror's token cache grew by %s over %d calls per run: each call was a signature verification;\n", growth, rows[0].calls)
	fmt.Fprintf(out, " fewer only where an insert evicted a token from a full set of the 100,000-token cache. Variants interleaved in rounds of %d calls.)\n", interceptorChunk)
}
