package interceptors_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/interceptors"
)

// fleet is a real authority (authoritytest: bbolt, gRPC over bufconn)
// and any number of real mirrors following it, each with its own
// connection, as services run them.
type fleet struct {
	t     testing.TB
	a     *authoritytest.Authority
	log   *slog.Logger
	admin *client.Client
}

// startFleet starts the authority of a fleet.
func startFleet(t testing.TB, opts authoritytest.Options) *fleet {
	t.Helper()
	a := authoritytest.Start(t, opts)
	return &fleet{t: t, a: a, log: testLogger(t), admin: a.Dial()}
}

// mirror starts a mirror named instance on its own connection, waits
// until it is synced, and returns it with the function that stops it
// (and waits until Run has returned).
func (f *fleet) mirror(instance string, opts client.MirrorOptions, dial ...client.Option) (*client.Mirror, func()) {
	f.t.Helper()
	opts.Clock, opts.Logger = f.a.Clock().Now, f.log
	opts.Identity = client.MirrorIdentity{Service: "fleet-test", InstanceID: instance, Version: "v0.0.1"}
	return runMirror(f.t, f.a.Dial(dial...), opts)
}

func (f *fleet) login(user string) string {
	f.t.Helper()
	resp, err := f.admin.Sessions.CreateSession(context.Background(), &pb.CreateSessionRequest{UserId: user})
	if err != nil {
		f.t.Fatal(err)
	}
	return resp.GetAccessToken()
}

func (f *fleet) subscribers() *pb.ListSubscribersResponse {
	f.t.Helper()
	resp, err := f.admin.Events.ListSubscribers(context.Background(), &pb.ListSubscribersRequest{})
	if err != nil {
		f.t.Fatal(err)
	}
	return resp
}

func waitedBan(user, wait string) *pb.CreateBanRequest {
	r := userBan(user)
	r.Wait = wait
	return r
}

// gate holds a mirror's event processing while closed.
type gate struct {
	mu   sync.Mutex
	hold chan struct{} // nil: open
}

func (g *gate) close() {
	g.mu.Lock()
	g.hold = make(chan struct{})
	g.mu.Unlock()
}

func (g *gate) open() {
	g.mu.Lock()
	if g.hold != nil {
		close(g.hold)
		g.hold = nil
	}
	g.mu.Unlock()
}

// beforeApply blocks changes (not checkpoints) while the gate is closed.
func (g *gate) beforeApply(resp *pb.WatchResponse) {
	if resp.GetChange() == nil {
		return
	}
	g.mu.Lock()
	h := g.hold
	g.mu.Unlock()
	if h != nil {
		<-h
	}
}

// With 20 mirrors connected, a ban with a wait returns with all 20
// confirmed, and at that moment every one of them refuses the user.
func TestWaitedBanConfirmedByEveryMirror(t *testing.T) {
	f := startFleet(t, authoritytest.Options{})
	const n = 20
	mirrors := make([]*client.Mirror, n)
	for i := range mirrors {
		mirrors[i], _ = f.mirror(fmt.Sprintf("m%02d", i), client.MirrorOptions{})
	}
	tok := f.login("mallory")
	for i, m := range mirrors {
		if _, err := m.Check(context.Background(), tok, client.CheckInput{}); err != nil {
			t.Fatalf("mirror %d refuses mallory before the ban: %v", i, err)
		}
	}
	resp, err := f.admin.Bans.CreateBan(context.Background(), waitedBan("mallory", "20s"))
	if err != nil {
		t.Fatal(err)
	}
	// No window: every mirror refuses the moment the call returns.
	for i, m := range mirrors {
		if _, err := m.Check(context.Background(), tok, client.CheckInput{}); !errors.Is(err, client.ErrUserBanned) {
			t.Errorf("mirror %d after the waited ban: %v, want ErrUserBanned", i, err)
		}
	}
	e := resp.GetEnforcement()
	if e.GetConfirmed() != n || e.GetTotal() != n || len(e.GetLaggards()) != 0 {
		t.Fatalf("enforcement = %v, want %d/%d confirmed", e, n, n)
	}
	t.Logf("enforced by %d/%d mirrors in %v", e.GetConfirmed(), e.GetTotal(), e.GetElapsed().AsDuration())

	// ListSubscribers shows the fleet, each at the ban's revision.
	subs := f.subscribers()
	seen := map[string]bool{}
	for _, s := range subs.GetSubscribers() {
		if s.GetIdentity() == nil {
			continue // the admin client watches nothing; tolerate others
		}
		seen[s.GetIdentity().GetInstanceId()] = true
		if s.GetAppliedRevision() < e.GetRevision() || s.GetIdentity().GetService() != "fleet-test" || s.GetSubscriberId() == "" {
			t.Errorf("subscriber %v: want applied >= %d", s, e.GetRevision())
		}
	}
	if len(seen) != n {
		t.Errorf("ListSubscribers shows %d mirrors, want %d", len(seen), n)
	}
}

// A paused mirror: the waited ban returns at its deadline naming it;
// ListSubscribers shows its lag; resumed, it catches up.
func TestWaitedBanNamesThePausedMirror(t *testing.T) {
	f := startFleet(t, authoritytest.Options{ProgressTimeout: time.Minute})
	var g gate
	var fast []*client.Mirror
	for i := range 4 {
		m, _ := f.mirror(fmt.Sprintf("fast-%d", i), client.MirrorOptions{})
		fast = append(fast, m)
	}
	slow, _ := f.mirror("slow", client.MirrorOptions{}, authoritytest.BeforeWatchMessage(g.beforeApply))
	tok := f.login("mallory")

	g.close()
	defer g.open()
	start := time.Now()
	resp, err := f.admin.Bans.CreateBan(context.Background(), waitedBan("mallory", "300ms"))
	if err != nil {
		t.Fatal(err)
	}
	e := resp.GetEnforcement()
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("returned after %v, before its 300ms deadline", took)
	}
	if e.GetConfirmed() != 4 || e.GetTotal() != 5 || len(e.GetLaggards()) != 1 ||
		e.GetLaggards()[0].GetIdentity().GetInstanceId() != "slow" || e.GetLaggards()[0].GetLag() < 1 {
		t.Fatalf("enforcement = %v, want 4/5 with laggard slow", e)
	}
	for i, m := range fast {
		if _, err := m.Check(context.Background(), tok, client.CheckInput{}); !errors.Is(err, client.ErrUserBanned) {
			t.Errorf("fast mirror %d: %v, want ErrUserBanned", i, err)
		}
	}
	// The paused mirror has not applied the ban: it still admits.
	if _, err := slow.Check(context.Background(), tok, client.CheckInput{}); err != nil {
		t.Errorf("paused mirror refuses already: %v", err)
	}
	var slowSub *pb.Subscriber
	subs := f.subscribers()
	for _, s := range subs.GetSubscribers() {
		if s.GetIdentity().GetInstanceId() == "slow" {
			slowSub = s
		}
	}
	if slowSub == nil || slowSub.GetLag() < 1 || slowSub.GetAppliedRevision() >= e.GetRevision() ||
		slowSub.GetAppliedRevision()+slowSub.GetLag() != subs.GetRevision() {
		t.Fatalf("ListSubscribers shows slow as %v (current revision %d), want a lag", slowSub, subs.GetRevision())
	}

	// Resume: it catches up, and a waited write confirms all five.
	g.open()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := slow.WaitRevision(ctx, e.GetRevision()); err != nil {
		t.Fatal(err)
	}
	if _, err := slow.Check(context.Background(), tok, client.CheckInput{}); !errors.Is(err, client.ErrUserBanned) {
		t.Errorf("resumed mirror: %v, want ErrUserBanned", err)
	}
	lift, err := f.admin.Bans.LiftBan(context.Background(), &pb.LiftBanRequest{BanId: resp.GetBan().GetBanId(), Wait: "20s"})
	if err != nil {
		t.Fatal(err)
	}
	if le := lift.GetEnforcement(); le.GetConfirmed() != 5 || le.GetTotal() != 5 {
		t.Fatalf("lift enforcement = %v, want 5/5", le)
	}
	for _, s := range f.subscribers().GetSubscribers() {
		if s.GetIdentity() != nil && s.GetLag() != 0 {
			t.Errorf("after catching up: %v, want lag 0", s)
		}
	}
}

// A mirror that disconnects drops out of the set a wait waits for at
// once, and out of ListSubscribers; one that stops reporting has its
// stream ended after the progress timeout.
func TestDisconnectedMirrorDropsOut(t *testing.T) {
	f := startFleet(t, authoritytest.Options{ProgressTimeout: 2 * time.Second, CheckpointInterval: 50 * time.Millisecond})
	f.mirror("stays", client.MirrorOptions{})
	_, stop := f.mirror("leaves", client.MirrorOptions{})
	var g gate
	f.mirror("stuck", client.MirrorOptions{MinBackoff: time.Hour, MaxBackoff: time.Hour}, authoritytest.BeforeWatchMessage(g.beforeApply))
	defer g.open()
	stop()
	g.close()
	// The waited write does not wait for "leaves" (gone, or going), and
	// "stuck" is cut off after 2s without a report (long enough that "stays"
	// reports in time on a busy machine).
	resp, err := f.admin.Bans.CreateBan(context.Background(), waitedBan("mallory", "30s"))
	if err != nil {
		t.Fatal(err)
	}
	e := resp.GetEnforcement()
	if e.GetConfirmed() != 1 || len(e.GetLaggards()) != 0 || e.GetElapsed().AsDuration() > 20*time.Second {
		t.Fatalf("enforcement = %v, want 1 confirmed, the others gone", e)
	}
	for _, s := range f.subscribers().GetSubscribers() {
		if id := s.GetIdentity().GetInstanceId(); id == "leaves" || id == "stuck" {
			t.Errorf("ListSubscribers still shows %v", s)
		}
	}
}

// A strict method on a service whose mirror is behind refuses a user
// banned a moment ago, while a default method still admits them until
// the mirror catches up.
func TestStrictMethodRefusesWhileDefaultMayAdmit(t *testing.T) {
	f := startFleet(t, authoritytest.Options{ProgressTimeout: time.Minute})
	var g gate
	m, _ := f.mirror("payments", client.MirrorOptions{}, authoritytest.BeforeWatchMessage(g.beforeApply))
	const pay, browse = "/grpc.testing.TestService/UnaryCall", "/grpc.testing.TestService/EmptyCall"
	// short fails closed quickly once the mirror cannot catch up; svc has
	// a strict timeout that a busy machine meets, for the calls that must
	// succeed in catching up.
	short := serve(t, m, chatService(), []interceptors.Option{
		interceptors.WithStrictMethods(pay),
		interceptors.WithStrictTimeout(300 * time.Millisecond),
	})
	svc := serve(t, m, chatService(), []interceptors.Option{
		interceptors.WithStrictMethods(pay),
		interceptors.WithStrictTimeout(time.Minute),
	})
	authoritative := serve(t, m, chatService(), []interceptors.Option{
		interceptors.WithAuthorityMethods(f.admin.Sessions, pay),
	})
	tok := f.login("mallory")
	if _, err := svc.UnaryCall(bearer(tok), &testgrpc.SimpleRequest{}); err != nil {
		t.Fatalf("strict method before the ban: %v", err)
	}

	g.close() // the mirror falls behind
	defer g.open()
	if _, err := f.admin.Bans.CreateBan(context.Background(), userBan("mallory")); err != nil {
		t.Fatal(err)
	}
	// Default: checked against the mirror, which has not seen the ban.
	if _, err := svc.EmptyCall(bearer(tok), &testgrpc.Empty{}); err != nil {
		t.Fatalf("default method while the mirror is behind: %v (it may admit)", err)
	}
	// Strict by catch-up: the mirror cannot catch up: fail closed.
	_, err := short.UnaryCall(bearer(tok), &testgrpc.SimpleRequest{})
	wantStatus(t, err, codes.Unavailable, "MIRROR_STALE")
	// Strict by the authority: refused with the ban's reason.
	_, err = authoritative.UnaryCall(bearer(tok), &testgrpc.SimpleRequest{})
	wantStatus(t, err, codes.PermissionDenied, "USER_BANNED")

	// Once the mirror catches up, every method refuses.
	g.open()
	tctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := m.CatchUp(tctx); err != nil {
		t.Fatal(err)
	}
	_, err = svc.UnaryCall(bearer(tok), &testgrpc.SimpleRequest{})
	wantStatus(t, err, codes.PermissionDenied, "USER_BANNED")
	_, err = svc.EmptyCall(bearer(tok), &testgrpc.Empty{})
	wantStatus(t, err, codes.PermissionDenied, "USER_BANNED")
}
