package client_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// network lets a mirror outlive an authority, or move to another one: its
// dialer reaches whichever authority is current (none: dialling fails, as
// for a stopped one), and its API key can change (another store has other
// keys).
type network struct {
	cur atomic.Pointer[authoritytest.Authority]
	key atomic.Pointer[string]
}

func (n *network) dial(ctx context.Context, addr string) (net.Conn, error) {
	a := n.cur.Load()
	if a == nil {
		return nil, errors.New("no authority on the network")
	}
	return a.DialContext(ctx, addr)
}

// use makes a the network's current authority (nil: none).
func (n *network) use(a *env) {
	if a == nil {
		n.cur.Store(nil)
		return
	}
	n.cur.Store(a.Authority)
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

// env is a real authority (authoritytest: a bbolt file, served over
// bufconn, checkpoints every 20ms) on a network that mirrors follow.
type env struct {
	*authoritytest.Authority
	t   testing.TB
	net *network

	// admin calls the authority with the admin key, through the Client;
	// it outlives Restart.
	admin *client.Client
}

type envOptions struct {
	clock *authoritytest.Clock
	net   *network
	// snapshotPart is the authority's SnapshotPartSize (0: the default).
	snapshotPart int
}

// newClock is a clock for authorities and mirrors that share it.
func newClock() *authoritytest.Clock { return authoritytest.NewClock(authoritytest.DefaultStart) }

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// newEnv starts an authority on a fresh store and makes it the network's
// current one.
func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	if o.net == nil {
		o.net = &network{}
	}
	a := authoritytest.Start(t, authoritytest.Options{Clock: o.clock, CheckpointInterval: 20 * time.Millisecond, SnapshotPartSize: o.snapshotPart})
	e := &env{Authority: a, t: t, net: o.net, admin: a.Dial()}
	o.net.use(e)
	if o.net.key.Load() == nil {
		o.net.key.Store(&a.AdminKey)
	}
	return e
}

func (e *env) ctx() context.Context { return context.Background() }

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
	opts.Clock = e.Clock().Now
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
	// A hang guard, not a timing: a 50k-ban snapshot under -race on a busy
	// 2-core machine has taken over 10 s to load.
	wctx, wcancel := context.WithTimeout(context.Background(), time.Minute)
	defer wcancel()
	if err := m.WaitSynced(wctx); err != nil {
		t.Fatalf("WaitSynced: %v", err)
	}
	return m
}

// catchUp waits until the mirror has applied everything e's store has.
func (m *mirror) catchUp(e *env) {
	m.t.Helper()
	rev := e.Revision()
	eventually(m.t, "the mirror to reach the store's revision", func() bool { return m.Revision() >= rev })
}

// advance moves the shared clock and waits for the next checkpoint, so
// that the mirror is not stale by the new time.
func (m *mirror) advance(e *env, d time.Duration) {
	m.t.Helper()
	e.Clock().Advance(d)
	eventually(m.t, "a checkpoint", func() bool { return m.Stats().Staleness < time.Second })
}

// check is Check with a background context.
func (m *mirror) check(tok string, in client.CheckInput) (*client.Session, error) {
	return m.Check(context.Background(), tok, in)
}

// eventually polls cond (every millisecond, for at most 10 s).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
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
