package authoritytest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/test/bufconn"

	"github.com/portcullis-dev/portcullis/client"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/server"
)

// Authority is a running Portcullis authority: the real authority and
// server over a store of its own (a bbolt file, or etcd under
// Options.EtcdEndpoints), served in memory (grpc bufconn).
type Authority struct {
	// AdminKey is the secret of the bootstrap API key (scope admin), which
	// Dial uses unless told otherwise. It lives in the store, so it
	// survives Restart.
	AdminKey string

	clock   *Clock
	opts    Options
	log     *slog.Logger
	backend backend
	storeID string
	// tcpAddr is the loopback address under Options.Loopback, kept across
	// Restart so that clients dialled by address find the authority again.
	tcpAddr string

	// fail reports a broken authority: t.Fatalf under Start, a panic
	// under New (as httptest panics when it cannot listen).
	fail func(format string, args ...any)
	// removeDir removes New's temporary directory; nil under Start, whose
	// t.TempDir() is removed by the testing package.
	removeDir func()

	// lis is the in-memory listener of the running instance, nil while
	// stopped: DialContext reads it on every (re)connection, so clients
	// outlive a Restart.
	lis atomic.Pointer[bufconn.Listener]

	mu      sync.Mutex
	run     *instance // nil while stopped
	clients []*client.Client
	closed  bool
}

// instance is one life of the authority, from start or Restart to Stop:
// what `portcullis serve` holds between its start and SIGTERM.
type instance struct {
	store storage.Store
	auth  *authority.Authority
	srv   *server.Server
	grpc  *grpc.Server
	lis   *bufconn.Listener
	tcp   net.Listener // nil without Options.Loopback
}

// Start starts an authority for the test on a fresh bbolt file in
// t.TempDir() (or in etcd under Options.EtcdEndpoints), logging warnings
// to the test's output. It stops when the test ends, after the test's
// later cleanups (so mirrors the test started stop first); then, for a
// bbolt file, it checks the file (bbolt's page check and the store's
// invariants), failing the test on any inconsistency.
func Start(t testing.TB, opts Options) *Authority {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := newAuthority(opts, log, filepath.Join(t.TempDir(), "portcullis.db"), "")
	if err != nil {
		t.Fatalf("authoritytest: %v", err)
	}
	a.fail = func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format, args...)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("authoritytest: %v", err)
		}
	})
	return a
}

// New starts an authority outside a test (an example, a TestMain that
// shares one authority among a package's tests) on a fresh bbolt file in
// a temporary directory (or in etcd under Options.EtcdEndpoints), logging
// warnings to stderr. The caller must Close it; Close reports what the
// file check finds.
func New(opts Options) (*Authority, error) {
	dir, err := os.MkdirTemp("", "authoritytest-")
	if err != nil {
		return nil, fmt.Errorf("authoritytest: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := newAuthority(opts, log, filepath.Join(dir, "portcullis.db"), "")
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("authoritytest: %w", err)
	}
	a.fail = func(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
	a.removeDir = func() { os.RemoveAll(dir) }
	return a, nil
}

// newAuthority makes the authority over the backend opts choose and starts
// it. adminKey is the admin key of a store another replica bootstrapped.
func newAuthority(opts Options, log *slog.Logger, path, adminKey string) (*Authority, error) {
	if opts.Clock == nil {
		opts.Clock = NewClock(DefaultStart)
	}
	be, err := newBackend(opts, log, path)
	if err != nil {
		return nil, err
	}
	a := &Authority{AdminKey: adminKey, clock: opts.Clock, opts: opts, log: log, backend: be}
	if opts.Loopback {
		a.tcpAddr = "127.0.0.1:0"
	}
	if err := a.serve(); err != nil {
		return nil, err
	}
	return a, nil
}

// Clock is the authority's clock.
func (a *Authority) Clock() *Clock { return a.clock }

// Addr is the authority's 127.0.0.1 TCP address under Options.Loopback,
// and "" without it. It serves plaintext (client.WithInsecure), and keeps
// its port across Restart.
func (a *Authority) Addr() string {
	if !a.opts.Loopback {
		return ""
	}
	return a.tcpAddr
}

// StoreID is the ID of the authority's store (the store_id of its Watch
// stream): another Authority, even on the same address, has another.
func (a *Authority) StoreID() string { return a.storeID }

// DialContext connects to the authority's in-memory listener, for
// grpc.WithContextDialer: for a connection Dial does not make (a plain
// grpc.ClientConn, or one whose dialer picks among several authorities).
// It reaches whichever instance is running, so a connection survives
// Restart; while the authority is stopped it fails, as dialling a stopped
// server does.
func (a *Authority) DialContext(ctx context.Context, _ string) (net.Conn, error) {
	lis := a.lis.Load()
	if lis == nil {
		return nil, errors.New("authoritytest: the authority is stopped")
	}
	return lis.DialContext(ctx)
}

// Dial returns a client of the authority with the admin key; opts come
// after Dial's own, so client.WithAPIKey(a.NewAPIKey(...)) calls with
// another key (client.WithAPIKey("") with none) and
// client.WithDialOptions adds interceptors. The client outlives Restart
// and is closed when the authority closes.
func (a *Authority) Dial(opts ...client.Option) *client.Client {
	own := []client.Option{
		client.WithInsecure(),
		client.WithAPIKey(a.AdminKey),
		client.WithDialOptions(
			grpc.WithContextDialer(a.DialContext),
			// The client package's backoff (from 250ms) is for a network;
			// in memory, a lost connection is back at once.
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 5 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 50 * time.Millisecond},
				MinConnectTimeout: time.Second,
			}),
		),
	}
	c, err := client.Dial("passthrough:///authority", append(own, opts...)...)
	if err != nil {
		a.fail("authoritytest: Dial: %v", err)
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		c.Close()
		a.fail("authoritytest: Dial after Close")
		return nil
	}
	a.clients = append(a.clients, c)
	return c
}

// running returns the running instance, failing when there is none.
func (a *Authority) running(what string) *instance {
	a.mu.Lock()
	run := a.run
	a.mu.Unlock()
	if run == nil {
		a.fail("authoritytest: %s on a stopped authority", what)
	}
	return run
}

// NewAPIKey creates an API key named name with the given scopes (such as
// "events:watch", "bans:write"; "admin" grants all) and returns its
// secret, for client.WithAPIKey. The key lives in the store, so it
// survives Restart.
func (a *Authority) NewAPIKey(name string, scopes ...string) string {
	run := a.running("NewAPIKey")
	_, secret, err := run.auth.CreateAPIKey(context.Background(), authority.System, name, scopes, nil)
	if err != nil {
		a.fail("authoritytest: NewAPIKey(%q, %q): %v", name, scopes, err)
	}
	return secret
}

// Revision is the revision of the authority's last committed change: a
// mirror at this revision has seen everything written so far.
func (a *Authority) Revision() int64 {
	run := a.running("Revision")
	var rev int64
	err := run.store.View(context.Background(), func(tx storage.ReadTx) error {
		rev = tx.Revision()
		return nil
	})
	if err != nil {
		a.fail("authoritytest: Revision: %v", err)
	}
	return rev
}

// Close stops the authority as `portcullis serve` does on SIGTERM (open
// streams end with Unavailable), closes every client Dial returned and,
// for a bbolt file, closes and checks it (and, for an authority from New,
// removes it). Closing twice is harmless. Under Start, the test's end
// calls it.
func (a *Authority) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	clients := a.clients
	a.mu.Unlock()
	for _, c := range clients {
		// Its only error is "already closed": the test may close a client
		// itself.
		_ = c.Close()
	}
	a.mu.Lock()
	err := a.stopLocked()
	a.mu.Unlock()
	if a.removeDir != nil {
		a.removeDir()
	}
	return err
}

// reconnected waits until every open client from Dial is connected again
// or idle (an idle connection connects on its next call, which waits for
// it): a call right after Restart then does not fail fast on a connection
// still backing off from the stopped instance.
func (a *Authority) reconnected() error {
	a.mu.Lock()
	clients := a.clients
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, c := range clients {
		conn := c.Conn()
		for {
			s := conn.GetState()
			if s == connectivity.Ready || s == connectivity.Idle || s == connectivity.Shutdown {
				break
			}
			if !conn.WaitForStateChange(ctx, s) {
				return fmt.Errorf("a client from Dial is still %v 10s after Restart", s)
			}
		}
	}
	return nil
}
