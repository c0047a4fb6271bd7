package server_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd/etcdtest"
)

// BenchmarkCreateBanEtcd is BenchmarkCreateBan over the etcd backend: full
// gRPC calls to authority replicas over one embedded, single-member etcd
// server with fsync on (etcd's default), in the same process. Each call
// returns after etcd committed (fsynced) its transaction. With 3 replicas
// the callers are spread over them round-robin.
func BenchmarkCreateBanEtcd(b *testing.B) {
	for _, c := range []struct{ replicas, callers int }{{1, 1}, {1, 64}, {3, 64}} {
		b.Run("replicas="+strconv.Itoa(c.replicas)+"/callers="+strconv.Itoa(c.callers), func(b *testing.B) {
			m := etcdtest.Start(b, etcdtest.Config{})
			clock := &testClock{now: time.Now()}
			rs, admin := bootstrapReplicas(b, c.replicas, clock.Now, m)
			ctx := as(admin)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			for i := range c.callers {
				r := rs[i%len(rs)]
				wg.Go(func() {
					for {
						n := next.Add(1)
						if n > int64(b.N) {
							return
						}
						clock.catchUp()
						_, err := r.bans.CreateBan(ctx, &pb.CreateBanRequest{
							Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "user-" + strconv.FormatInt(n, 10)}},
							Reason:  "benchmark", Policy: "tos-4.2",
						})
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
			var conflicts int64
			for _, r := range rs {
				conflicts += r.store.Conflicts()
			}
			b.ReportMetric(float64(conflicts)/float64(b.N), "retries/op")
		})
	}
}

// BenchmarkEventLatencyEtcd: a ban created on replica 1 until its change
// arrives on a Watch stream served by replica 2, one ban at a time. It
// reports the median and 99th percentile from the call's start and from
// its acknowledgement (the change can arrive before CreateBan returns).
func BenchmarkEventLatencyEtcd(b *testing.B) {
	m := etcdtest.Start(b, etcdtest.Config{})
	clock := &testClock{now: time.Now()}
	rs, admin := bootstrapReplicas(b, 2, clock.Now, m)
	benchEventLatency(b, clock, as(admin), rs[0].bans, rs[1].events)
}

// BenchmarkEventLatencyBolt is the same with one authority over bbolt (the
// write and the Watch on the same process), for comparison.
func BenchmarkEventLatencyBolt(b *testing.B) {
	e := newEnv(b, envOptions{clock: &testClock{now: time.Now()}})
	benchEventLatency(b, e.clock, e.admin(), e.bans, e.events)
}

func benchEventLatency(b *testing.B, clock *testClock, ctx context.Context, bans pb.BanServiceClient, events pb.EventServiceClient) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := events.Watch(ctx, &pb.WatchRequest{})
	if err != nil {
		b.Fatal(err)
	}
	if msg, err := stream.Recv(); err != nil || msg.GetSnapshot() == nil {
		b.Fatalf("first message %v, %v", msg, err)
	}
	fromStart := make([]time.Duration, 0, b.N)
	fromAck := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for n := range b.N {
		clock.catchUp()
		t0 := time.Now()
		resp, err := bans.CreateBan(ctx, &pb.CreateBanRequest{
			Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "user-" + strconv.Itoa(n)}}, Reason: "benchmark",
		})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		for {
			msg := recvChange(b, stream)
			if msg.GetChange().GetEvents()[0].GetBanCreated().GetBanId() == resp.GetBan().GetBanId() {
				break
			}
		}
		t2 := time.Now()
		fromStart = append(fromStart, t2.Sub(t0))
		fromAck = append(fromAck, max(t2.Sub(t1), 0))
	}
	b.StopTimer()
	pct := func(d []time.Duration, p float64) float64 {
		slices.Sort(d)
		return float64(d[min(len(d)-1, int(float64(len(d))*p))].Microseconds())
	}
	b.ReportMetric(pct(fromStart, 0.5), "p50-from-call-µs")
	b.ReportMetric(pct(fromStart, 0.99), "p99-from-call-µs")
	b.ReportMetric(pct(fromAck, 0.5), "p50-from-ack-µs")
	b.ReportMetric(pct(fromAck, 0.99), "p99-from-ack-µs")
}
