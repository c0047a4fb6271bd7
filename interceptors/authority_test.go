package interceptors_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// realAuthority is a real authority (authoritytest: bbolt file, gRPC over
// bufconn) with an admin client of it and a synced Mirror.
type realAuthority struct {
	*authoritytest.Authority
	admin  *client.Client
	mirror *client.Mirror
}

// startAuthority starts an authority and a Mirror following it, and waits
// until the mirror is synced.
func startAuthority(t testing.TB) *realAuthority {
	t.Helper()
	a := authoritytest.Start(t, authoritytest.Options{})
	admin := a.Dial()
	m, _ := runMirror(t, admin, client.MirrorOptions{Clock: a.Clock().Now, Logger: testLogger(t)})
	return &realAuthority{Authority: a, admin: admin, mirror: m}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// runMirror runs a mirror of c until the test ends, waits until it is
// synced, and returns it with the function that stops it (and waits until
// Run has returned).
func runMirror(t testing.TB, c *client.Client, opts client.MirrorOptions) (*client.Mirror, func()) {
	t.Helper()
	m := client.NewMirror(c, opts)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		m.Run(ctx)
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-ran }) }
	t.Cleanup(stop)
	wctx, wcancel := context.WithTimeout(context.Background(), time.Minute)
	defer wcancel()
	if err := m.WaitSynced(wctx); err != nil {
		t.Fatalf("mirror %q not synced: %v", opts.Identity.InstanceID, err)
	}
	return m, stop
}

// login creates a session and returns its access token.
func (a *realAuthority) login(t testing.TB, user, device string) string {
	t.Helper()
	resp, err := a.admin.Sessions.CreateSession(context.Background(), &pb.CreateSessionRequest{UserId: user, DeviceId: device})
	if err != nil {
		t.Fatalf("CreateSession(%s): %v", user, err)
	}
	return resp.GetAccessToken()
}

// ban bans user (in the default tenant) and returns the ban.
func (a *realAuthority) ban(t testing.TB, req *pb.CreateBanRequest) *pb.Ban {
	t.Helper()
	resp, err := a.admin.Bans.CreateBan(context.Background(), req)
	if err != nil {
		t.Fatalf("CreateBan: %v", err)
	}
	a.caughtUp(t)
	return resp.GetBan()
}

// caughtUp waits until the mirror has applied every change committed so
// far, so that a check made next sees them.
func (a *realAuthority) caughtUp(t testing.TB) {
	t.Helper()
	rev := a.Revision()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(time.Minute)
	for a.mirror.Revision() < rev {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("mirror at revision %d, authority at %d", a.mirror.Revision(), rev)
		}
	}
}

func userBan(user string) *pb.CreateBanRequest {
	return &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: user}}, Reason: "spam"}
}
