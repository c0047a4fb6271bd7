package server_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/server"
)

// benchCallers are the numbers of concurrent callers each write benchmark
// runs with: one (every write pays its own fsync) and 64 (writes share
// commits).
var benchCallers = []int{1, 64}

// benchWrites runs op b.N times, from exactly callers goroutines, over a
// real authority on a real bbolt file (served over bufconn). Every op is a
// full gRPC call that returns after its commit was fsynced. It reports
// durable writes per second. (Explicit goroutines rather than RunParallel,
// which cannot run exactly one caller when GOMAXPROCS > 1.)
//
// The authority's clock follows real time here, as in production. With the
// tests' frozen clock every ban, session and audit ID would share one
// millisecond prefix and differ only in their random tail, so each insert
// would land at a random leaf of its B-tree instead of at the end: about
// 3x the dirty pages per commit and some 40% fewer writes/s, which measures
// the test clock, not the authority.
func benchWrites(b *testing.B, op func(ctx context.Context, e *env, n int64) error) {
	for _, callers := range benchCallers {
		b.Run("callers="+strconv.Itoa(callers), func(b *testing.B) {
			// Rate limits off: the benchmark measures durable writes.
			e := newEnv(b, envOptions{clock: &testClock{now: time.Now()}, server: server.Options{Limits: server.Limits{CreateSessionPerSecond: -1}}})
			ctx := e.admin()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			for range callers {
				wg.Go(func() {
					for {
						n := next.Add(1)
						if n > int64(b.N) {
							return
						}
						e.clock.catchUp()
						if err := op(ctx, e, n); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
		})
	}
}

// BenchmarkCreateBan: full user bans, each on a user of its own (so that
// no subject accumulates bans and no session is revoked).
func BenchmarkCreateBan(b *testing.B) {
	benchWrites(b, func(ctx context.Context, e *env, n int64) error {
		_, err := e.bans.CreateBan(ctx, &pb.CreateBanRequest{
			Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "user-" + strconv.FormatInt(n, 10)}},
			Reason:  "benchmark", Policy: "tos-4.2",
		})
		return err
	})
}

// BenchmarkCreateSession: logins of distinct users from one address.
func BenchmarkCreateSession(b *testing.B) {
	benchWrites(b, func(ctx context.Context, e *env, n int64) error {
		_, err := e.sessions.CreateSession(ctx, &pb.CreateSessionRequest{
			UserId: "user-" + strconv.FormatInt(n, 10), ClientIp: "203.0.113.7", DeviceId: "device-" + strconv.FormatInt(n, 10),
		})
		return err
	})
}

// catchUp moves the clock to the wall clock's now, if that is later: the
// benchmarks' clock follows real time and never goes back.
func (c *testClock) catchUp() {
	now := time.Now()
	c.mu.Lock()
	if now.After(c.now) {
		c.now = now
	}
	c.mu.Unlock()
}
