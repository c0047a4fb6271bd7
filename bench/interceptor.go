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

// The variants of the interceptor row, in the order of their table rows.
const (
	bare          = iota // no interceptor, no token
	cachedControl        // no interceptor, the cached calls' token sent
	control              // no interceptor, the first-seen calls' tokens sent
	cached               // interceptor, the same valid token every call
	firstSeen            // interceptor, a token never checked before every call
	variantCount
)

var variantNames = [variantCount]string{
	"bare (no interceptor, no token)",
	"bare, the same token header sent (control for cached)",
	"bare, a fresh token header sent (control for first-seen)",
	"interceptor, cached token (same token every call)",
	"interceptor, first-seen token (a new token every call)",
}

// interceptorRow is the cost per unary call of the server interceptor
// (interceptors.UnaryServerInterceptor over a synced client.Mirror), one
// caller on loopback TCP, against the same service without it.
type interceptorRow struct {
	calls int // per variant
	// rounds holds, per variant, the mean ns per call of each round; round
	// i of every variant ran back to back, so they pair up.
	rounds [variantCount][]float64
	// cacheGrowth is how many tokens the mirror's cache gained during the
	// first-seen calls: each is a token the mirror verified (signature and
	// all) and cached. It equals calls unless an insert evicted another
	// token from a full set of the cache.
	cacheGrowth int
}

// The statistics of a variant are medians over the rounds, so that a
// burst of other load on the shared machine (a few rounds) moves them
// little, and the difference and ratio to bare are the medians of each
// round's own, paired, difference and ratio.

func (r interceptorRow) ns(v int) float64 { return median(r.rounds[v]) }

func (r interceptorRow) overBare(v int) float64 {
	d := make([]float64, len(r.rounds[v]))
	for i, x := range r.rounds[v] {
		d[i] = x - r.rounds[bare][i]
	}
	return median(d)
}

func (r interceptorRow) ratio(v int) float64 {
	q := make([]float64, len(r.rounds[v]))
	for i, x := range r.rounds[v] {
		q[i] = x / r.rounds[bare][i]
	}
	return median(q)
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
	admin         *client.Client
	mirror        *client.Mirror
	bare, guarded testgrpc.TestServiceClient
	cachedToken   string
	closers       []func()
	tokensCreated int // so far, for unique user IDs
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
	b = &interceptorBench{}
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
	sctx, scancel := context.WithTimeout(ctx, time.Minute)
	defer scancel()
	m, stopMirror, err := client.StartMirror(sctx, mc, client.MirrorOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, fmt.Errorf("mirror sync: %w", err)
	}
	b.mirror = m
	b.closers = append(b.closers, stopMirror)

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
	guard, err := interceptors.ServerOptions(b.mirror)
	if err != nil {
		return nil, err
	}
	if b.guarded, err = serve(guard...); err != nil {
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

// measure times calls calls of each variant and records how many
// first-seen calls the mirror verified and cached.
func (b *interceptorBench) measure(calls int) (interceptorRow, error) {
	row := interceptorRow{calls: calls}
	warm := min(calls, interceptorChunk)
	tokens, err := b.freshTokens(warm + calls)
	if err != nil {
		return row, fmt.Errorf("CreateSession: %w", err)
	}
	ctx := context.Background()
	req := &testgrpc.SimpleRequest{}
	cachedCtx := interceptors.WithToken(ctx, b.cachedToken)
	var next, nextControl int // the next fresh token of first-seen and of control
	call := [variantCount]func() error{
		bare:          func() error { _, err := b.bare.UnaryCall(ctx, req); return err },
		cachedControl: func() error { _, err := b.bare.UnaryCall(cachedCtx, req); return err },
		control: func() error {
			_, err := b.bare.UnaryCall(interceptors.WithToken(ctx, tokens[nextControl]), req)
			nextControl++
			return err
		},
		cached: func() error { _, err := b.guarded.UnaryCall(cachedCtx, req); return err },
		firstSeen: func() error {
			_, err := b.guarded.UnaryCall(interceptors.WithToken(ctx, tokens[next]), req)
			next++
			return err
		},
	}
	for _, f := range call { // warm-up, untimed: connections, pools, the first-seen path
		for range warm {
			if err := f(); err != nil {
				return row, err
			}
		}
	}
	before := b.mirror.Stats().Cached
	for round := 0; round*interceptorChunk < calls; round++ {
		k := min(interceptorChunk, calls-round*interceptorChunk)
		for j := range variantCount {
			v := (round + j) % variantCount
			start := time.Now()
			for range k {
				if err := call[v](); err != nil {
					return row, fmt.Errorf("%s: %w", variantNames[v], err)
				}
			}
			row.rounds[v] = append(row.rounds[v], float64(time.Since(start).Nanoseconds())/float64(k))
		}
	}
	row.cacheGrowth = b.mirror.Stats().Cached - before
	if next != warm+calls || nextControl != warm+calls {
		return row, fmt.Errorf("used %d and %d fresh tokens, want %d", next, nextControl, warm+calls)
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

// printInterceptor prints each variant's ns per call and its difference
// and ratio to bare (medians over rounds, see interceptorRow), as the
// median over the runs of each run's value.
func printInterceptor(out io.Writer, rows []interceptorRow) {
	h, rule := runsHeader(len(rows), "ns/call")
	fmt.Fprintf(out, "| unary call on loopback TCP, one caller | calls | ns/call | minus bare | / bare |%s\n| --- | ---: | ---: | ---: | ---: |%s\n", h, rule)
	for v := range variantCount {
		var ns, diff, ratio []float64
		for _, r := range rows {
			ns, diff, ratio = append(ns, r.ns(v)), append(diff, r.overBare(v)), append(ratio, r.ratio(v))
		}
		each := eachRun(ns, func(x float64) string { return fmt.Sprintf("%.0f", x) })
		fmt.Fprintf(out, "| %s | %d | %.0f | %+.0f ns | %.3f |%s\n", variantNames[v], rows[0].calls, median(ns), median(diff), median(ratio), runsCell(each))
	}
	growth := eachRun(rows, func(r interceptorRow) string { return fmt.Sprint(r.cacheGrowth) })
	if growth == "" {
		growth = fmt.Sprint(rows[0].cacheGrowth)
	}
	fmt.Fprintf(out, "(medians over rounds of %d calls per variant, interleaved in a rotating order; the differences and ratios are each round's own.\n", interceptorChunk)
	fmt.Fprintf(out, " first-seen: the mirror's token cache grew by %s over %d calls per run: each call was a signature verification;\n", growth, rows[0].calls)
	fmt.Fprintf(out, " fewer only where an insert evicted a token from a full set of the 100,000-token cache, which fills over runs.)\n")
}
