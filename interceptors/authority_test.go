package interceptors_test

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt/bolttest"
	"github.com/portcullis-dev/portcullis/server"
)

// clock is a settable clock shared by the authority and the mirror.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// realAuthority is an authority over a real bbolt file, served over
// bufconn, with an admin client of it and a synced Mirror.
type realAuthority struct {
	clock  *clock
	store  storage.Store
	admin  *client.Client
	mirror *client.Mirror
}

// startAuthority starts an authority (as `portcullis serve` wires it) and
// a Mirror following it, and waits until the mirror is synced.
func startAuthority(t testing.TB) *realAuthority {
	t.Helper()
	clk := &clock{now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	store := bolttest.Open(t, bolt.Options{Logger: log})
	auth := authority.New(store, authority.Config{Clock: clk.Now, Logger: log})
	ctx := context.Background()
	if err := auth.EnsureSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	key, err := auth.EnsureBootstrapKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(auth, server.Options{Logger: log})
	g := srv.NewGRPCServer()
	lis := bufconn.Listen(1 << 20)
	go g.Serve(lis)
	admin, err := client.Dial("passthrough:///authority", client.WithInsecure(), client.WithAPIKey(key),
		client.WithDialOptions(grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return lis.DialContext(ctx)
		})))
	if err != nil {
		t.Fatal(err)
	}
	m := client.NewMirror(admin, client.MirrorOptions{Clock: clk.Now, Logger: log})
	runCtx, stop := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		m.Run(runCtx)
	}()
	t.Cleanup(func() {
		stop()
		<-ran
		admin.Close()
		srv.Shutdown()
		g.Stop()
	})
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := m.WaitSynced(waitCtx); err != nil {
		t.Fatalf("mirror not synced: %v", err)
	}
	return &realAuthority{clock: clk, store: store, admin: admin, mirror: m}
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
	var rev int64
	if err := a.store.View(context.Background(), func(tx storage.ReadTx) error { rev = tx.Revision(); return nil }); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
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
