package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/rpcerr"
)

// The progress protocol around snapshots, end to end: a mirror that loads
// slowly still syncs on its first snapshot, one that cannot acknowledge is
// told when to come back and waits, and an honest mirror's reports are
// never refused.

// runMirror starts a mirror of c (with hook, when set, as its reconnect
// hook) until the test ends.
func runMirror(t *testing.T, a *authoritytest.Authority, c *client.Client, opts client.MirrorOptions, hook func(error, time.Duration)) *client.Mirror {
	t.Helper()
	opts.Clock = a.Clock().Now
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	if opts.MinBackoff == 0 {
		opts.MinBackoff, opts.MaxBackoff = 2*time.Millisecond, 20*time.Millisecond
	}
	m := client.NewMirror(c, opts)
	if hook != nil {
		m.SetReconnectHook(hook)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Mirror.Run: %v", err)
		}
	})
	return m
}

// waitSynced waits for the mirror's first snapshot, with a hang guard.
func waitSynced(t *testing.T, m *client.Mirror) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.WaitSynced(ctx); err != nil {
		t.Fatalf("WaitSynced: %v", err)
	}
}

// progressTimeoutsPass returns once n progress timeouts have passed on the
// authority's own timer: n canaries, one after the other, each a
// reporting subscriber that resumes at the current revision (no snapshot,
// so not loading) and never reports, each ended by the progress timeout.
func progressTimeoutsPass(t *testing.T, a *authoritytest.Authority, n int) {
	t.Helper()
	events := a.Dial().Events
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		stream, err := events.Watch(ctx, &pb.WatchRequest{AfterRevision: a.Revision(), StoreId: a.StoreID(),
			Identity: &pb.MirrorIdentity{Service: "canary", InstanceId: fmt.Sprint("canary-", i)}})
		if err != nil {
			t.Fatal(err)
		}
		for err == nil {
			_, err = stream.Recv()
		}
		cancel()
		if !errors.Is(err, client.ErrUnavailable) || !strings.Contains(err.Error(), "progress timeout") {
			t.Fatalf("canary %d ended with %v, want the progress timeout", i, err)
		}
	}
}

// TestMirrorSlowSnapshotLoad: a mirror whose first snapshot takes several
// progress timeouts to load (held by a beforeApply hook at its first part until
// the authority's own timer has cut five canaries) syncs on that
// snapshot: one stream, one snapshot sent, Resets 1. Before the fix the
// authority cut it mid-load, it reconnected for a fresh snapshot, and was
// cut again, forever.
func TestMirrorSlowSnapshotLoad(t *testing.T) {
	a := authoritytest.Start(t, authoritytest.Options{CheckpointInterval: 20 * time.Millisecond,
		ProgressTimeout: 100 * time.Millisecond, SnapshotPartSize: 16 << 10})
	// More than the stream's flow-control window holds: while the mirror
	// is held, the authority's sends block (the send timeout, 30s, is not
	// reached).
	const nBans = 20_000
	now := timestamppb.New(a.Clock().Now())
	a.SeedBans(nBans, func(i int) *pb.Ban {
		return &pb.Ban{BanId: synthID("ban_", i), TenantId: "public", Subject: userSubject(fmt.Sprintf("user-%07d", i)),
			Reason: "spam", CreateTime: now}
	})

	var snapshots, parts atomic.Int64
	loading := make(chan struct{})
	release := make(chan struct{})
	m := runMirror(t, a, a.Dial(), client.WithBeforeApply(client.MirrorOptions{}, func(resp *pb.WatchResponse) {
		s := resp.GetSnapshot()
		if s == nil {
			return
		}
		if !s.GetMore() {
			snapshots.Add(1)
		}
		if parts.Add(1) == 1 {
			// Loading the snapshot (receiving and applying its parts)
			// takes as long as the test says.
			close(loading)
			<-release
		}
	}), nil)

	select {
	case <-loading:
	case <-time.After(time.Minute): // hang guard
		t.Fatal("no snapshot")
	}
	progressTimeoutsPass(t, a, 5)
	close(release)
	waitSynced(t, m)

	// Right after WaitSynced the mirror has not acknowledged yet, so its
	// stream is still loading: nothing but the load could have cut it.
	st := m.Stats()
	if st.Resets != 1 || snapshots.Load() != 1 || st.Connects != 1 {
		t.Fatalf("Resets %d, snapshots received %d, streams %d; want 1, 1, 1", st.Resets, snapshots.Load(), st.Connects)
	}
	if parts.Load() < 2 {
		t.Fatalf("the snapshot came in %d part(s); the test wants several", parts.Load())
	}
	if st.Bans != nBans {
		t.Fatalf("%d bans, want %d", st.Bans, nBans)
	}
	// Its acknowledgement is accepted and counted.
	events := a.Dial().Events
	eventually(t, "the authority to record the mirror's acknowledgement", func() bool {
		resp, err := events.ListSubscribers(context.Background(), &pb.ListSubscribersRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range resp.GetSubscribers() {
			if s.GetSubscriberId() != "" && s.GetAppliedRevision() >= st.Revision {
				return true
			}
		}
		return false
	})
}

// cutAtSnapshotEnd makes a Watch stream fail, as a broken connection
// would, when the last part of a snapshot arrives, while cut is set: the
// mirror never applies, so never acknowledges, a snapshot.
func cutAtSnapshotEnd(cut *atomic.Bool) grpc.DialOption {
	return grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
		streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		s, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil || method != pb.EventService_Watch_FullMethodName {
			return s, err
		}
		return cutStream{ClientStream: s, cut: cut}, nil
	})
}

type cutStream struct {
	grpc.ClientStream
	cut *atomic.Bool
}

func (s cutStream) RecvMsg(m any) error {
	if err := s.ClientStream.RecvMsg(m); err != nil {
		return err
	}
	if r, ok := m.(*pb.WatchResponse); ok && r.GetSnapshot() != nil && !r.GetSnapshot().GetMore() && s.cut.Load() {
		return status.Error(codes.Unavailable, "test: connection lost at the snapshot's last part")
	}
	return nil
}

// TestMirrorSnapshotTooSoon: a mirror that keeps losing its stream before
// it can acknowledge a snapshot is refused with SNAPSHOT_TOO_SOON and a
// RetryInfo, and waits at least that delay before it reconnects: its next
// attempt is served (one refusal in all), and it syncs.
func TestMirrorSnapshotTooSoon(t *testing.T) {
	a := authoritytest.Start(t, authoritytest.Options{CheckpointInterval: 20 * time.Millisecond})
	var cut atomic.Bool
	cut.Store(true)
	var mu sync.Mutex
	var refusals []time.Duration // RetryInfo delays
	var waits []time.Duration    // the waits Run chose after them
	m := runMirror(t, a, a.Dial(client.WithDialOptions(cutAtSnapshotEnd(&cut))), client.MirrorOptions{},
		func(err error, wait time.Duration) {
			if !errors.Is(err, rpcerr.ErrSnapshotTooSoon) {
				return
			}
			var delay time.Duration
			for _, d := range status.Convert(err).Details() {
				if ri, ok := d.(*errdetails.RetryInfo); ok {
					delay = ri.GetRetryDelay().AsDuration()
				}
			}
			mu.Lock()
			refusals, waits = append(refusals, delay), append(waits, wait)
			mu.Unlock()
			cut.Store(false) // the connection is fine from now on
		})
	waitSynced(t, m)

	mu.Lock()
	defer mu.Unlock()
	if len(refusals) != 1 {
		t.Fatalf("%d SNAPSHOT_TOO_SOON refusals (delays %v), want exactly 1: the mirror came back before the delay", len(refusals), refusals)
	}
	if refusals[0] <= 0 || waits[0] < refusals[0] {
		t.Fatalf("RetryInfo delay %v, the mirror waited %v", refusals[0], waits[0])
	}
	if st := m.Stats(); st.Resets != 1 {
		t.Fatalf("Resets %d, want 1", st.Resets)
	}
}

// reportGate holds each Watch send of the authority from returning until
// a progress report has reached the authority after it began: every
// report of what was just sent arrives before the authority's SendMsg
// returns, the race an authority that recorded what it sent only after
// SendMsg lost (it refused honest reports with REVISION_NOT_SENT).
type reportGate struct {
	mu      sync.Mutex
	reports int64
	changed chan struct{}
}

func (g *reportGate) state() (int64, <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.changed == nil {
		g.changed = make(chan struct{})
	}
	return g.reports, g.changed
}

func (g *reportGate) reported() {
	g.mu.Lock()
	g.reports++
	if g.changed != nil {
		close(g.changed)
		g.changed = nil
	}
	g.mu.Unlock()
}

func (g *reportGate) option() grpc.ServerOption {
	return grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		switch info.FullMethod {
		case pb.EventService_Watch_FullMethodName:
			return handler(srv, gatedSend{ServerStream: ss, g: g})
		case pb.EventService_StreamProgress_FullMethodName:
			return handler(srv, countedRecv{ServerStream: ss, g: g})
		}
		return handler(srv, ss)
	})
}

type gatedSend struct {
	grpc.ServerStream
	g *reportGate
}

func (s gatedSend) SendMsg(m any) error {
	before, _ := s.g.state()
	if err := s.ServerStream.SendMsg(m); err != nil {
		return err
	}
	for {
		n, changed := s.g.state()
		if n > before {
			return nil
		}
		select {
		case <-changed:
		case <-s.Context().Done():
			return nil
		}
	}
}

type countedRecv struct {
	grpc.ServerStream
	g *reportGate
}

func (s countedRecv) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err == nil {
		s.g.reported()
	}
	return err
}

// syncBuf is a log sink for several goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestMirrorHonestReportsNeverRefused: under a stream of bans, with every
// report reaching the authority before its SendMsg returns, no report of
// an honest mirror is refused, and every waited write is confirmed by it.
func TestMirrorHonestReportsNeverRefused(t *testing.T) {
	gate := &reportGate{}
	a := authoritytest.Start(t, authoritytest.Options{CheckpointInterval: 20 * time.Millisecond,
		ServerOptions: []grpc.ServerOption{gate.option()}})
	var logs syncBuf
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := runMirror(t, a, a.Dial(), client.MirrorOptions{Logger: log}, nil)
	waitSynced(t, m)

	admin := a.Dial()
	const writers, bans = 4, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range bans {
				req := &pb.CreateBanRequest{Subject: userSubject(fmt.Sprintf("u-%d-%d", w, i))}
				if i%10 == 9 {
					req.Wait = "60s"
				}
				resp, err := admin.Bans.CreateBan(context.Background(), req)
				if err != nil {
					t.Error(err)
					return
				}
				if e := resp.GetEnforcement(); req.Wait != "" && (e.GetConfirmed() != 1 || e.GetTotal() != 1) {
					t.Errorf("enforcement %v, want the mirror confirmed", e)
				}
			}
		})
	}
	wg.Wait()
	if out := logs.String(); strings.Contains(out, "REVISION_NOT_SENT") {
		t.Fatalf("an honest report was refused:\n%s", out)
	}
	if m.Stats().Reports == 0 {
		t.Fatal("no reports")
	}
	if n, _ := gate.state(); n == 0 {
		t.Fatal("the gate saw no report")
	}
}
