package server_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/server"
)

// The progress protocol around snapshots: a loading subscriber is not cut
// by the progress timeout, one that never acknowledges is limited, and no
// report may exceed what its stream was sent.

// hangGuard bounds a test's waits on conditions; never a timing.
const hangGuard = time.Minute

// currentRevision is the store's revision now.
func (e *env) currentRevision() (string, int64) {
	e.t.Helper()
	resp, err := e.events.GetRevision(e.admin(), &pb.GetRevisionRequest{})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.GetStoreId(), resp.GetRevision()
}

// progressTimeoutsPass returns once n progress timeouts have passed on the
// authority's own timer: n canaries, one after the other, each a
// reporting subscriber that resumes (no snapshot: it does not load) and
// never reports, each cut by the progress timeout.
func (e *env) progressTimeoutsPass(n int) {
	e.t.Helper()
	for i := range n {
		storeID, rev := e.currentRevision()
		ctx, cancel := context.WithTimeout(e.admin(), hangGuard)
		stream, err := e.events.Watch(ctx, &pb.WatchRequest{AfterRevision: rev, StoreId: storeID,
			Identity: &pb.MirrorIdentity{Service: "canary", InstanceId: fmt.Sprint("canary-", i)}})
		if err != nil {
			e.t.Fatal(err)
		}
		for {
			if _, err = stream.Recv(); err != nil {
				break
			}
		}
		cancel()
		wantStatus(e.t, err, codes.Unavailable, "UNAVAILABLE")
		if !strings.Contains(status.Convert(err).Message(), "progress timeout") {
			e.t.Fatalf("canary %d ended with %v, want the progress timeout", i, err)
		}
	}
}

func counterValue(t testing.TB, m *server.Metrics, name string) float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// watchSnapshot opens a reporting Watch stream that starts from a
// snapshot and reads the snapshot (all its parts); it returns the stream,
// the subscriber ID and the snapshot's revision.
func (e *env) watchSnapshot(ctx context.Context, instance string) (pb.EventService_WatchClient, string, int64) {
	e.t.Helper()
	stream, err := e.events.Watch(ctx, &pb.WatchRequest{Identity: &pb.MirrorIdentity{Service: "snapproto-test", InstanceId: instance}})
	if err != nil {
		e.t.Fatal(err)
	}
	var id string
	for {
		resp, err := stream.Recv()
		if err != nil {
			e.t.Fatalf("Watch %s: %v", instance, err)
		}
		if id == "" {
			id = resp.GetSubscriberId()
		}
		if resp.GetSnapshot() == nil {
			e.t.Fatalf("Watch %s: %v before the snapshot's last part", instance, resp)
		}
		if !resp.GetSnapshot().GetMore() {
			return stream, id, resp.GetRevision()
		}
	}
}

// report sends one progress report on a StreamProgress stream of its own
// and closes it: nil once the report is recorded, else the status that
// ended the stream.
func (e *env) report(ctx context.Context, id string, rev int64) error {
	ps, err := e.events.StreamProgress(ctx)
	if err != nil {
		return err
	}
	// Send fails with io.EOF when the authority already ended the stream;
	// CloseAndRecv then returns the status it ended with.
	_ = ps.Send(&pb.StreamProgressRequest{SubscriberId: id, Revision: rev})
	_, err = ps.CloseAndRecv()
	return err
}

// TestWatchLoadingSubscriberNotCut: a subscriber that takes several
// progress timeouts to load its snapshot keeps its stream, and its first
// report, of the snapshot's revision, is accepted; after that the
// progress timeout applies again. Before the fix it was cut at the first
// tick, long before it could report.
func TestWatchLoadingSubscriberNotCut(t *testing.T) {
	metrics := server.NewMetrics()
	e := newEnv(t, envOptions{server: server.Options{CheckpointInterval: 20 * time.Millisecond,
		ProgressTimeout: 100 * time.Millisecond, SnapshotPartSize: 512, Metrics: metrics}})
	for i := range 20 {
		e.ban(userBan("", fmt.Sprint("user-", i)))
	}
	ctx, cancel := context.WithTimeout(e.admin(), hangGuard)
	defer cancel()
	stream, id, rev := e.watchSnapshot(ctx, "slow-loader")

	e.progressTimeoutsPass(5) // "loading" all along

	if err := e.report(e.admin(), id, rev); err != nil {
		t.Fatalf("report after a slow load: %v", err)
	}
	if got := counterValue(t, metrics, "portcullis_snapshots_sent_total"); got != 1 {
		t.Fatalf("portcullis_snapshots_sent_total = %v, want 1", got)
	}
	// Loaded: silence is now judged by the progress timeout.
	var err error
	for err == nil {
		_, err = stream.Recv()
	}
	wantStatus(t, err, codes.Unavailable, "UNAVAILABLE")
	if !strings.Contains(status.Convert(err).Message(), "progress timeout") {
		t.Fatalf("stream ended with %v, want the progress timeout", err)
	}
}

// TestWatchLoadTimeout: a loading subscriber that never reports (not even
// a heartbeat) is cut by the load timeout (at least the send timeout, ten
// progress timeouts), not kept forever.
func TestWatchLoadTimeout(t *testing.T) {
	e := newEnv(t, envOptions{server: server.Options{CheckpointInterval: 20 * time.Millisecond,
		ProgressTimeout: 20 * time.Millisecond, SendTimeout: 300 * time.Millisecond}})
	ctx, cancel := context.WithTimeout(e.admin(), hangGuard)
	defer cancel()
	start := time.Now()
	stream, _, _ := e.watchSnapshot(ctx, "wedged")
	var err error
	for err == nil {
		_, err = stream.Recv()
	}
	wantStatus(t, err, codes.Unavailable, "UNAVAILABLE")
	if !strings.Contains(status.Convert(err).Message(), "load timeout") {
		t.Fatalf("stream ended with %v, want the load timeout", err)
	}
	// Not a timing bound (that would need an idle machine): the floor the
	// rule guarantees.
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("cut after %v, before the load timeout", el)
	}
}

// TestSnapshotTooSoon: a reporting subscriber that keeps taking snapshots
// without acknowledging them is refused with ResourceExhausted /
// SNAPSHOT_TOO_SOON and a RetryInfo; another instance, a subscriber
// without an identity and one that acknowledges are not.
func TestSnapshotTooSoon(t *testing.T) {
	metrics := server.NewMetrics()
	e := newEnv(t, envOptions{server: server.Options{CheckpointInterval: 20 * time.Millisecond, Metrics: metrics}})
	ctx, cancel := context.WithTimeout(e.admin(), hangGuard)
	defer cancel()

	// One that acknowledges every snapshot is never refused.
	for range 5 {
		sctx, scancel := context.WithCancel(ctx)
		_, id, rev := e.watchSnapshot(sctx, "acknowledges")
		if err := e.report(e.admin(), id, rev); err != nil {
			t.Fatal(err)
		}
		scancel()
	}

	// One that never does: the first retry is free, then the window (1s,
	// doubling) refuses. Each attempt follows the last at once; a busy
	// machine may let a window pass, never three in a row as they grow.
	var refused error
	for attempt := 0; refused == nil; attempt++ {
		if attempt == 10 {
			t.Fatal("never refused")
		}
		sctx, scancel := context.WithCancel(ctx)
		stream, err := e.events.Watch(sctx, &pb.WatchRequest{Identity: &pb.MirrorIdentity{Service: "snapproto-test", InstanceId: "never-acknowledges"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil {
			if attempt < 2 {
				t.Fatalf("attempt %d refused: %v", attempt, err)
			}
			refused = err
		}
		scancel()
	}
	info := wantStatus(t, refused, codes.ResourceExhausted, "SNAPSHOT_TOO_SOON")
	if n, _ := strconv.Atoi(info.GetMetadata()["unacknowledged_snapshots"]); n < 2 {
		t.Fatalf("metadata %v, want unacknowledged_snapshots >= 2", info.GetMetadata())
	}
	var delay time.Duration
	for _, d := range status.Convert(refused).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			delay = ri.GetRetryDelay().AsDuration()
		}
	}
	if delay <= 0 || delay > time.Minute {
		t.Fatalf("RetryInfo delay %v, want in (0, 1m]", delay)
	}

	// Not another instance of the same key, nor a subscriber without an
	// identity (it reports nothing, so it is never limited).
	sctx, scancel := context.WithCancel(ctx)
	e.watchSnapshot(sctx, "another-instance")
	scancel()
	for range 5 {
		sctx, scancel := context.WithCancel(ctx)
		stream, err := e.events.Watch(sctx, &pb.WatchRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := stream.Recv(); err != nil || resp.GetSnapshot() == nil {
			t.Fatalf("identity-less Watch: %v, %v", resp, err)
		}
		scancel()
	}
	if got := counterValue(t, metrics, "portcullis_rejections_total"); got < 1 {
		t.Fatalf("rejections %v", got)
	}
}

// TestReportBeyondSent: a report of a revision the stream was never sent
// ends the progress stream with OutOfRange / REVISION_NOT_SENT (metadata
// sent_revision) and is never counted: a write that
// waits still names the subscriber as a laggard.
func TestReportBeyondSent(t *testing.T) {
	e := newEnv(t, envOptions{server: server.Options{CheckpointInterval: 20 * time.Millisecond}})
	ctx, cancel := context.WithTimeout(e.admin(), hangGuard)
	defer cancel()
	_, id, rev := e.watchSnapshot(ctx, "liar")

	info := wantStatus(t, e.report(ctx, id, 999_999_999), codes.OutOfRange, "REVISION_NOT_SENT")
	if sent, _ := strconv.ParseInt(info.GetMetadata()["sent_revision"], 10, 64); sent < rev {
		t.Fatalf("sent_revision %v, want at least the snapshot's %d", info.GetMetadata(), rev)
	}

	req := userBan("", "mallory")
	req.Wait = "50ms"
	resp, err := e.bans.CreateBan(e.admin(), req)
	if err != nil {
		t.Fatal(err)
	}
	enf := resp.GetEnforcement()
	if enf.GetConfirmed() != 0 || enf.GetTotal() != 1 || len(enf.GetLaggards()) != 1 || enf.GetLaggards()[0].GetSubscriberId() != id {
		t.Fatalf("enforcement %v, want the liar as the one laggard", enf)
	}
	if got := enf.GetLaggards()[0].GetAppliedRevision(); got > rev {
		t.Fatalf("applied_revision %d counted beyond the snapshot's %d", got, rev)
	}
}

// TestHonestReportsNeverRefused: a subscriber that reports each revision
// the moment it arrives (before the authority's SendMsg may have returned)
// is never refused, while writers commit as fast as they can.
func TestHonestReportsNeverRefused(t *testing.T) {
	e := newEnv(t, envOptions{server: server.Options{CheckpointInterval: 5 * time.Millisecond}})
	ctx, cancel := context.WithTimeout(e.admin(), hangGuard)
	defer cancel()
	stream, id, rev := e.watchSnapshot(ctx, "honest")
	ps, err := e.events.StreamProgress(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const writers, bans = 4, 100
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range bans {
				if _, err := e.bans.CreateBan(e.admin(), userBan("", fmt.Sprintf("u-%d-%d", w, i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	reports := 0
	for last := rev; ; {
		if err := ps.Send(&pb.StreamProgressRequest{SubscriberId: id, Revision: last}); err != nil {
			_, err = ps.CloseAndRecv()
			t.Fatalf("after %d reports, the progress stream ended: %v", reports, err)
		}
		reports++
		select {
		case <-done:
			if _, cur := e.currentRevision(); last >= cur {
				if _, err := ps.CloseAndRecv(); err != nil {
					t.Fatalf("after %d reports: %v", reports, err)
				}
				return
			}
		default:
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		last = resp.GetRevision()
	}
}
