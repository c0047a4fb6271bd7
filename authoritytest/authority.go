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
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/test/bufconn"

	"github.com/portcullis-dev/portcullis/client"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt/bolttest"
	"github.com/portcullis-dev/portcullis/server"
)

// Authority is a running Portcullis authority: the real authority and
// server over a bbolt file of its own, served in memory (grpc bufconn).
type Authority struct {
	// AdminKey is the secret of the bootstrap API key (scope admin), which
	// Dial uses unless told otherwise.
	AdminKey string

	clock *Clock
	store *bolt.Store
	auth  *authority.Authority
	srv   *server.Server
	grpc  *grpc.Server
	lis   *bufconn.Listener
	tcp   net.Listener // nil without Options.Loopback

	// fail reports a broken authority: t.Fatalf under Start, a panic
	// under New (as httptest panics when it cannot listen).
	fail func(format string, args ...any)
	// closeStore closes the store and checks the file; under Start,
	// bolttest's cleanup does it instead.
	closeStore func() error

	mu      sync.Mutex
	clients []*client.Client
	closed  bool
}

// Start starts an authority for the test on a fresh bbolt file in
// t.TempDir(), logging warnings to the test's output. It stops when the
// test ends, after the test's later cleanups (so mirrors the test started
// stop first); then it closes the file and checks it (bbolt's page check
// and the store's invariants), failing the test on any inconsistency.
func Start(t testing.TB, opts Options) *Authority {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	store := bolttest.Open(t, bolt.Options{Logger: log})
	a, err := start(store, opts, log)
	if err != nil {
		t.Fatalf("authoritytest: %v", err)
	}
	a.fail = func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format, args...)
	}
	a.closeStore = func() error { return nil }
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("authoritytest: %v", err)
		}
	})
	return a
}

// New starts an authority outside a test (an example, a TestMain that
// shares one authority among a package's tests) on a fresh bbolt file in
// a temporary directory, logging warnings to stderr. The caller must
// Close it; Close reports what the file check finds.
func New(opts Options) (*Authority, error) {
	dir, err := os.MkdirTemp("", "authoritytest-")
	if err != nil {
		return nil, fmt.Errorf("authoritytest: %w", err)
	}
	path := filepath.Join(dir, "portcullis.db")
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := bolt.Open(path, bolt.Options{Logger: log})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("authoritytest: %w", err)
	}
	closeStore := func() error {
		defer os.RemoveAll(dir)
		if err := store.Close(); err != nil {
			return err
		}
		return bolt.Check(path)
	}
	a, err := start(store, opts, log)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("authoritytest: %w", err), closeStore())
	}
	a.fail = func(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
	a.closeStore = closeStore
	return a, nil
}

// start wires the authority as `portcullis serve` does and serves it.
func start(store *bolt.Store, opts Options, log *slog.Logger) (*Authority, error) {
	if opts.Clock == nil {
		opts.Clock = NewClock(DefaultStart)
	}
	auth := authority.New(store, authority.Config{Clock: opts.Clock.Now, Logger: log})
	ctx := context.Background()
	if err := auth.EnsureSigningKey(ctx); err != nil {
		return nil, err
	}
	key, err := auth.EnsureBootstrapKey(ctx)
	if err != nil {
		return nil, err
	}
	a := &Authority{AdminKey: key, clock: opts.Clock, store: store, auth: auth, lis: bufconn.Listen(1 << 20)}
	if opts.Loopback {
		if a.tcp, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, err
		}
	}
	a.srv = server.New(auth, server.Options{
		Logger:             log,
		CheckpointInterval: opts.CheckpointInterval,
		SendTimeout:        opts.SendTimeout,
		ProgressTimeout:    opts.ProgressTimeout,
	})
	a.grpc = a.srv.NewGRPCServer(opts.ServerOptions...)
	go a.grpc.Serve(a.lis)
	if a.tcp != nil {
		go a.grpc.Serve(a.tcp)
	}
	return a, nil
}

// Clock is the authority's clock.
func (a *Authority) Clock() *Clock { return a.clock }

// Addr is the authority's 127.0.0.1 TCP address under Options.Loopback,
// and "" without it. It serves plaintext (client.WithInsecure).
func (a *Authority) Addr() string {
	if a.tcp == nil {
		return ""
	}
	return a.tcp.Addr().String()
}

// Dial returns a client of the authority with the admin key; opts come
// after Dial's own, so client.WithAPIKey(a.NewAPIKey(...)) calls with
// another key and client.WithDialOptions adds interceptors. The client is
// closed when the authority stops.
func (a *Authority) Dial(opts ...client.Option) *client.Client {
	own := []client.Option{
		client.WithInsecure(),
		client.WithAPIKey(a.AdminKey),
		client.WithDialOptions(
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
				return a.lis.DialContext(ctx)
			}),
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

// NewAPIKey creates an API key named name with the given scopes (such as
// "events:watch", "bans:write"; "admin" grants all) and returns its
// secret, for client.WithAPIKey.
func (a *Authority) NewAPIKey(name string, scopes ...string) string {
	_, secret, err := a.auth.CreateAPIKey(context.Background(), authority.System, name, scopes, time.Time{})
	if err != nil {
		a.fail("authoritytest: NewAPIKey(%q, %q): %v", name, scopes, err)
	}
	return secret
}

// Revision is the revision of the authority's last committed change: a
// mirror at this revision has seen everything written so far.
func (a *Authority) Revision() int64 {
	var rev int64
	err := a.store.View(context.Background(), func(tx storage.ReadTx) error {
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
// for an authority from New, closes and checks its file and removes it.
// Closing twice is harmless. Under Start, the test's end calls it.
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
	a.srv.Shutdown()
	a.grpc.Stop()
	return a.closeStore()
}
