package fault

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/portcullis-dev/portcullis/client"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/server"
)

// env is a real authority over a real bbolt file, served on loopback TCP.
type env struct {
	t     *testing.T
	path  string
	bolt  *bolt.Store
	store storage.Store // what the authority writes through (maybe a decorator)
	auth  *authority.Authority
	srv   *server.Server
	opts  server.Options
	addr  string
	key   string
	g     *grpc.Server
	logs  *logTap
}

type envConfig struct {
	path    string                            // the bbolt file ("" = a fresh one in a temp dir)
	wrap    func(storage.Store) storage.Store // decorates the store (fault injection)
	options server.Options
}

func newEnv(t *testing.T, cfg envConfig) *env {
	t.Helper()
	if cfg.path == "" {
		cfg.path = filepath.Join(t.TempDir(), "portcullis.db")
	}
	st, err := bolt.Open(cfg.path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, path: cfg.path, bolt: st, store: st, logs: &logTap{}}
	if cfg.wrap != nil {
		e.store = cfg.wrap(st)
	}
	log := slog.New(e.logs)
	e.auth = authority.New(e.store, authority.Config{Logger: log})
	ctx := context.Background()
	if err := e.auth.EnsureSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	if e.key, err = e.auth.EnsureBootstrapKey(ctx); err != nil {
		t.Fatal(err)
	}
	cfg.options.Logger = log
	e.opts = cfg.options
	e.srv = server.New(e.auth, cfg.options)
	e.serve("127.0.0.1:0")
	t.Cleanup(func() {
		e.stop()
		e.srv.Shutdown()
		if err := st.Close(); err != nil {
			t.Error(err)
		}
		if err := bolt.Check(cfg.path); err != nil {
			t.Errorf("bolt.Check: %v", err)
		}
	})
	return e
}

// serve starts a gRPC server on addr (the authority "comes back").
func (e *env) serve(addr string) {
	e.t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.addr = lis.Addr().String()
	e.g = e.srv.NewGRPCServer()
	go e.g.Serve(lis)
}

// stop makes the authority unreachable (connections closed, port closed).
func (e *env) stop() {
	if e.g != nil {
		e.g.Stop()
		e.g = nil
	}
}

var fastReconnect = grpc.WithConnectParams(grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 100 * time.Millisecond},
	MinConnectTimeout: time.Second,
})

// dial returns a client of the authority with the admin key.
func (e *env) dial() *client.Client {
	e.t.Helper()
	c, err := client.Dial(e.addr, client.WithAPIKey(e.key), client.WithInsecure(), client.WithDialOptions(fastReconnect))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// quiet discards a mirror's logs (reconnections are expected here).
var quiet = slog.New(slog.DiscardHandler)

// logTap is a slog handler that remembers messages, so a test can wait
// for the server to say something (at warning level and above).
type logTap struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logTap) Enabled(_ context.Context, lvl slog.Level) bool { return lvl >= slog.LevelWarn }
func (l *logTap) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.msgs = append(l.msgs, r.Message)
	l.mu.Unlock()
	return nil
}
func (l *logTap) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logTap) WithGroup(string) slog.Handler      { return l }

func (l *logTap) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if strings.Contains(m, substr) {
			n++
		}
	}
	return n
}

// waitFor polls cond on a ticker until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", d, what)
		case <-tick.C:
		}
	}
}
