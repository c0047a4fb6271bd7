package interceptors_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// startMirrors starts n mirrors, mirrorsPerConn of them on each client
// connection, and waits until all are synced.
func (f *fleet) startMirrors(b *testing.B, n int, opts client.MirrorOptions) []*client.Mirror {
	const mirrorsPerConn = 50
	var cl *client.Client
	out := make([]*client.Mirror, n)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, n)
	for i := range out {
		if i%mirrorsPerConn == 0 {
			cl = f.a.Dial()
		}
		o := opts
		o.Clock, o.Logger = f.a.Clock().Now, f.log
		o.Identity = client.MirrorIdentity{Service: "bench", InstanceID: fmt.Sprint(i)}
		m := client.NewMirror(cl, o)
		go func() { m.Run(ctx); done <- struct{}{} }()
		out[i] = m
	}
	// Runs before the authority's cleanup, which closes the connections.
	b.Cleanup(func() {
		cancel()
		for range n {
			<-done
		}
	})
	wctx, wcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer wcancel()
	for _, m := range out {
		if err := m.WaitSynced(wctx); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// BenchmarkBanConfirmedByAll is the time from CreateBan (wait 60s) to its
// answer "confirmed by all N mirrors", all in one process.
func BenchmarkBanConfirmedByAll(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("mirrors=%d", n), func(b *testing.B) {
			f := startFleet(b, authoritytest.Options{ProgressTimeout: 10 * time.Minute})
			f.startMirrors(b, n, client.MirrorOptions{StaleAfter: time.Hour})
			var elapsed time.Duration
			i := 0
			for b.Loop() {
				i++
				resp, err := f.admin.Bans.CreateBan(context.Background(), waitedBan(fmt.Sprintf("u%d", i), "60s"))
				if err != nil {
					b.Fatal(err)
				}
				if e := resp.GetEnforcement(); e.GetConfirmed() != int32(n) {
					b.Fatalf("enforcement %d/%d, want %d", e.GetConfirmed(), e.GetTotal(), n)
				}
				elapsed += resp.GetEnforcement().GetElapsed().AsDuration()
			}
			b.ReportMetric(float64(elapsed.Microseconds())/float64(i)/1000, "ms-commit-to-all")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkProgressReportCPU is the CPU the whole process (authority and
// 1,000 mirrors) uses at a steady 20 bans/s for 3 s, with progress
// reports and without: the difference is what the reports cost.
func BenchmarkProgressReportCPU(b *testing.B) {
	const n, rate, window = 1000, 20, 3 * time.Second
	for _, reports := range []bool{false, true} {
		b.Run(fmt.Sprintf("reports=%v", reports), func(b *testing.B) {
			f := startFleet(b, authoritytest.Options{ProgressTimeout: 10 * time.Minute})
			ms := f.startMirrors(b, n, client.MirrorOptions{StaleAfter: time.Hour, DisableProgress: !reports})
			var cpu time.Duration
			var secs float64
			var reports0 int64
			for _, m := range ms {
				reports0 += m.Stats().Reports
			}
			i := 0
			for b.Loop() {
				start, c0 := time.Now(), cpuTime()
				tick := time.NewTicker(time.Second / rate)
				var rev int64
				for time.Since(start) < window {
					<-tick.C
					i++
					// A zero wait returns at once, with the write's revision.
					req := userBan(fmt.Sprintf("u%d", i))
					req.Wait = "0s"
					resp, err := f.admin.Bans.CreateBan(context.Background(), req)
					if err != nil {
						b.Fatal(err)
					}
					rev = resp.GetEnforcement().GetRevision()
				}
				tick.Stop()
				// Let every mirror apply the last ban before stopping the
				// clock (its revision: with reports off a mirror learns the
				// authority's only from checkpoints).
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				for _, m := range ms {
					if err := m.WaitRevision(ctx, rev); err != nil {
						b.Fatal(err)
					}
				}
				cancel()
				cpu += cpuTime() - c0
				secs += time.Since(start).Seconds()
			}
			b.ReportMetric(cpu.Seconds()/secs, "cpu-cores")
			var reports int64
			for _, m := range ms {
				reports += m.Stats().Reports
			}
			b.ReportMetric(float64(reports-reports0)/float64(i), "reports/ban")
		})
	}
}

// reportingFleet is an authority with one reporting mirror, and the
// mirror's subscriber_id.
func reportingFleet(b *testing.B) (*fleet, *client.Mirror, string) {
	f := startFleet(b, authoritytest.Options{ProgressTimeout: 10 * time.Minute})
	m, _ := f.mirror("bench", client.MirrorOptions{})
	var id string
	for _, s := range f.subscribers().GetSubscribers() {
		if s.GetSubscriberId() != "" {
			id = s.GetSubscriberId()
		}
	}
	return f, m, id
}

// BenchmarkStreamProgressMessage is the cost of one progress report sent
// as a message of a StreamProgress stream (what mirrors do), caller and
// authority together: CPU per report. The stream is closed and answered
// at the end, so every report has been processed when the clock stops.
func BenchmarkStreamProgressMessage(b *testing.B) {
	f, m, id := reportingFleet(b)
	ps, err := f.admin.Events.StreamProgress(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	req := &pb.StreamProgressRequest{SubscriberId: id, Revision: m.Revision()}
	c0 := cpuTime()
	n := 0
	for b.Loop() {
		n++
		if err := ps.Send(req); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := ps.CloseAndRecv(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64((cpuTime()-c0).Microseconds())/float64(n), "cpu-µs/report")
}
