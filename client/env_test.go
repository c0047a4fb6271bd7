package client_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/test/bufconn"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt/bolttest"
	"github.com/portcullis-dev/portcullis/server"
)

// testClock is the settable clock shared by the authority and the mirror.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *testClock {
	return &testClock{now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// network lets clients outlive an authority: their dialer reaches
// whichever bufconn listener is current, and their API key can change
// (a wiped store has other keys).
type network struct {
	lis atomic.Pointer[bufconn.Listener]
	key atomic.Pointer[string]
}

func (n *network) dial(ctx context.Context, _ string) (net.Conn, error) {
	l := n.lis.Load()
	if l == nil {
		return nil, errors.New("no authority listening")
	}
	return l.DialContext(ctx)
}

// GetRequestMetadata and RequireTransportSecurity make the network a
// per-RPC credential with the current key.
func (n *network) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + *n.key.Load()}, nil
}

func (n *network) RequireTransportSecurity() bool { return false }

// dialOptions make reconnection fast: a test restarts authorities.
func (n *network) dialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithContextDialer(n.dial),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 5 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 50 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}),
	}
}

// env is a real authority over a real bbolt file, served over bufconn.
type env struct {
	t        testing.TB
	path     string
	clock    *testClock
	net      *network
	store    *bolt.Store
	auth     *authority.Authority
	srv      *server.Server
	grpc     *grpc.Server
	adminKey string
	stopped  bool

	// admin calls the authority with the admin key, through the Client.
	admin *client.Client
}

type envOptions struct {
	path  string // "" = a fresh file
	clock *testClock
	net   *network
	// snapshotPart is the authority's SnapshotPartSize (0: the default).
	snapshotPart int
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// newEnv starts an authority and makes it the network's current one.
func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	if o.path == "" {
		o.path = filepath.Join(t.TempDir(), "portcullis.db")
	}
	if o.clock == nil {
		o.clock = newClock()
	}
	if o.net == nil {
		o.net = &network{}
	}
	log := testLogger(t)
	e := &env{t: t, path: o.path, clock: o.clock, net: o.net}
	e.store = bolttest.OpenPath(t, o.path, bolt.Options{})
	e.auth = authority.New(e.store, authority.Config{Clock: o.clock.Now, Logger: log})
	ctx := context.Background()
	if err := e.auth.EnsureSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	key, err := e.auth.EnsureBootstrapKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if key == "" { // a reopened store: make another admin key
		_, key, err = e.auth.CreateAPIKey(ctx, authority.System, "test-admin-"+time.Now().Format("150405.000000000"), []string{authority.ScopeAdmin}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
	}
	e.adminKey = key
	e.srv = server.New(e.auth, server.Options{Logger: log, CheckpointInterval: 20 * time.Millisecond, SnapshotPartSize: o.snapshotPart})
	e.grpc = e.srv.NewGRPCServer()
	lis := bufconn.Listen(1 << 20)
	go e.grpc.Serve(lis)
	o.net.lis.Store(lis)
	if o.net.key.Load() == nil {
		o.net.key.Store(&key)
	}
	e.admin, err = client.Dial("passthrough:///bufnet", client.WithInsecure(), client.WithAPIKey(key),
		client.WithDialOptions(o.net.dialOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.stop)
	return e
}

// stop stops the authority the way the binary does on SIGTERM (streams
// end with Unavailable) and closes its store, so that another env can
// open the file.
func (e *env) stop() {
	if e.stopped {
		return
	}
	e.stopped = true
	e.admin.Close()
	e.srv.Shutdown()
	e.grpc.Stop()
	if err := e.store.Close(); err != nil {
		e.t.Errorf("close store: %v", err)
	}
}

func (e *env) ctx() context.Context { return context.Background() }

// revision is the store's current revision.
func (e *env) revision() int64 {
	e.t.Helper()
	var rev int64
	if err := e.store.View(e.ctx(), func(tx storage.ReadTx) error { rev = tx.Revision(); return nil }); err != nil {
		e.t.Fatal(err)
	}
	return rev
}

func (e *env) login(req *pb.CreateSessionRequest) *pb.CreateSessionResponse {
	e.t.Helper()
	resp, err := e.admin.Sessions.CreateSession(e.ctx(), req)
	if err != nil {
		e.t.Fatalf("CreateSession(%v): %v", req, err)
	}
	return resp
}

func (e *env) ban(req *pb.CreateBanRequest) *pb.Ban {
	e.t.Helper()
	resp, err := e.admin.Bans.CreateBan(e.ctx(), req)
	if err != nil {
		e.t.Fatalf("CreateBan(%v): %v", req, err)
	}
	return resp.GetBan()
}

func (e *env) lift(banID string) {
	e.t.Helper()
	if _, err := e.admin.Bans.LiftBan(e.ctx(), &pb.LiftBanRequest{BanId: banID, Reason: "test"}); err != nil {
		e.t.Fatalf("LiftBan(%s): %v", banID, err)
	}
}

func userSubject(id string) *pb.Subject {
	return &pb.Subject{Kind: &pb.Subject_UserId{UserId: id}}
}

func deviceSubject(id string) *pb.Subject {
	return &pb.Subject{Kind: &pb.Subject_DeviceId{DeviceId: id}}
}

func ipSubject(p string) *pb.Subject {
	return &pb.Subject{Kind: &pb.Subject_Ip{Ip: p}}
}

// mirror is a Mirror following an env's network, run until the test ends.
type mirror struct {
	*client.Mirror
	t      testing.TB
	events chan *pb.Event // every applied event (buffered; tests may ignore it)
}

// newMirror starts a mirror on e's network with e's clock. opts may set
// anything but Clock and OnEvent; dial adds options to its connection.
func newMirror(t testing.TB, e *env, opts client.MirrorOptions, dial ...grpc.DialOption) *mirror {
	t.Helper()
	c, err := client.Dial("passthrough:///bufnet", client.WithInsecure(),
		client.WithDialOptions(append(append(e.net.dialOptions(), grpc.WithPerRPCCredentials(e.net)), dial...)...))
	if err != nil {
		t.Fatal(err)
	}
	m := &mirror{t: t, events: make(chan *pb.Event, 1024)}
	opts.Clock = e.clock.Now
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	opts.MinBackoff, opts.MaxBackoff = 2*time.Millisecond, 20*time.Millisecond
	opts.OnEvent = func(ev *pb.Event) {
		select {
		case m.events <- ev:
		default:
		}
	}
	m.Mirror = client.NewMirror(c, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Mirror.Run: %v", err)
		}
		c.Close()
	})
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := m.WaitSynced(wctx); err != nil {
		t.Fatalf("WaitSynced: %v", err)
	}
	return m
}

// catchUp waits until the mirror has applied everything e's store has.
func (m *mirror) catchUp(e *env) {
	m.t.Helper()
	rev := e.revision()
	eventually(m.t, "the mirror to reach the store's revision", func() bool { return m.Revision() >= rev })
}

// advance moves the shared clock and waits for the next checkpoint, so
// that the mirror is not stale by the new time.
func (m *mirror) advance(e *env, d time.Duration) {
	m.t.Helper()
	e.clock.Advance(d)
	eventually(m.t, "a checkpoint", func() bool { return m.Staleness() < time.Second })
}

// check is Check with a background context.
func (m *mirror) check(tok string, in client.CheckInput) (*client.Session, error) {
	return m.Check(context.Background(), tok, in)
}

// eventually polls cond (every millisecond, for at most 10 s).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// wantBan fails unless err is a *BanError with the given reason and ban.
func wantBan(t testing.TB, err error, sentinel error, banID string) *client.BanError {
	t.Helper()
	var be *client.BanError
	if !errors.Is(err, sentinel) || !errors.Is(err, client.ErrBanned) || !errors.As(err, &be) {
		t.Fatalf("error %v, want %v with a *BanError", err, sentinel)
	}
	if banID != "" && be.BanID != banID {
		t.Fatalf("ban ID %s, want %s", be.BanID, banID)
	}
	return be
}

// ok checks tok and fails unless it passes.
func (m *mirror) ok(tok string, in client.CheckInput) *client.Session {
	m.t.Helper()
	s, err := m.check(tok, in)
	if err != nil {
		m.t.Fatalf("check(%+v): %v", in, err)
	}
	return s
}
