package signals_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// BenchmarkSignalsPush: A transmits to B's receiver by push, on loopback,
// both real `portcullis serve` processes over bbolt; B asks A for a window
// of SETs in flight (portcullis_max_in_flight) and commits each run of
// them in one transaction. Writers ban b.N new users on A (each ban
// acknowledged = durable at A); B applies each SET (its ban) before
// acknowledging it.
//
//   - live: 8 writers ban as fast as A takes it while B follows. Reported:
//     the time from each ban's acknowledgement at A to its ban at B (B's
//     create_time, the moment B applied the SET, before its 202), p50 and
//     p99, and the rate at which B applied them, which is A's rate of bans
//     when B keeps up.
//   - backlog: B is frozen (SIGSTOP) while A takes the bans, then thawed.
//     Reported: the rate at which B applied them, from its first
//     application to its last: the sustained delivery rate of the push
//     pipeline (A's signing and POSTs, B's verification, ordering and
//     commits), without A's own bans competing for the machine.
//
// Both processes share this machine's clock (and its two cores, with the
// writers).
//
//	go test -run '^$' -bench BenchmarkSignalsPush -benchtime 3000x -count 3 ./test/signals/
func BenchmarkSignalsPush(b *testing.B) {
	b.Run("live", func(b *testing.B) { benchSignalsPush(b, false) })
	b.Run("backlog", func(b *testing.B) { benchSignalsPush(b, true) })
}

func benchSignalsPush(b *testing.B, backlog bool) {
	a, rx := startNode(b, "a"), startNode(b, "b")
	rx.follow(a, "push", "t1")
	n := b.N
	user := func(i int) string { return fmt.Sprintf("bench-%d-%07d", n, i) }
	acked := make([]time.Time, n)

	b.ResetTimer()
	if backlog {
		rx.proc.Freeze()
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				req := &pb.CreateBanRequest{TenantId: "t1", Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: user(i)}}, Reason: "bench"}
				if _, err := a.admin.Bans.CreateBan(ctx(b), req); err != nil {
					b.Error(err)
					return
				}
				acked[i] = time.Now()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if backlog {
		rx.proc.Thaw()
	}
	// Cheap until the last ban sent is applied (a check, not a listing of
	// every ban, which would compete with B's work), then the listing.
	waitFor(b, "B applies the last SET", func() error {
		resp, err := rx.admin.Bans.CheckBan(ctx(b), &pb.CheckBanRequest{TenantId: "t1", UserId: user(n - 1)})
		if err == nil && !resp.GetBanned() {
			err = fmt.Errorf("%s not banned at B yet", user(n-1))
		}
		return err
	})
	applied := map[string]time.Time{}
	waitFor(b, "B applies every SET", func() error {
		for _, ban := range allBans(b, rx, "t1") {
			applied[ban.GetSubject().GetUserId()] = ban.GetCreateTime().AsTime()
		}
		if len(applied) < n {
			return fmt.Errorf("%d of %d applied", len(applied), n)
		}
		return nil
	})
	b.StopTimer()

	lat := make([]time.Duration, 0, n)
	var first, last time.Time
	for i := range n {
		at := applied[user(i)]
		lat = append(lat, at.Sub(acked[i]))
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	if span := last.Sub(first); span > 0 && n > 1 {
		b.ReportMetric(float64(n-1)/span.Seconds(), "SETs/s")
	}
	if backlog {
		return // the latencies are the freeze's
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	b.ReportMetric(float64(q(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(q(0.99).Microseconds())/1000, "p99-ms")
}
