package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt/bolttest"
	"github.com/portcullis-dev/portcullis/server"
)

// testClock is a settable clock shared by the authority under test.
type testClock struct {
	mu  sync.Mutex
	now time.Time
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

// env is a real authority over a real bbolt file, served over bufconn.
type env struct {
	t        testing.TB
	path     string
	store    *bolt.Store
	auth     *authority.Authority
	srv      *server.Server
	grpc     *grpc.Server
	conn     *grpc.ClientConn
	lis      *bufconn.Listener
	clock    *testClock
	adminKey string

	sessions pb.SessionServiceClient
	bans     pb.BanServiceClient
	events   pb.EventServiceClient
	keys     pb.KeyServiceClient
	audit    pb.AuditServiceClient
	apiKeys  pb.APIKeyServiceClient
}

type envOptions struct {
	path   string // reuse a data file (restart tests); "" = fresh
	server server.Options
	store  bolt.Options
	clock  *testClock
	// logger, when set, receives the logs of the authority and the server
	// (default: warnings to the test's output).
	logger *slog.Logger
	// wrap, when set, wraps the store the authority uses (fault injection).
	wrap func(storage.Store) storage.Store
}

// newEnv starts an authority on a fresh (or the given) bbolt file. The
// store is checked for consistency when the test ends.
func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	if o.path == "" {
		o.path = filepath.Join(t.TempDir(), "portcullis.db")
	}
	if o.clock == nil {
		o.clock = &testClock{now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	}
	log := o.logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	e := &env{t: t, path: o.path, clock: o.clock}
	e.store = bolttest.OpenPath(t, o.path, o.store)
	var st storage.Store = e.store
	if o.wrap != nil {
		st = o.wrap(st)
	}
	e.auth = authority.New(st, authority.Config{Clock: o.clock.Now, Logger: log})
	ctx := context.Background()
	if err := e.auth.EnsureSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	key, err := e.auth.EnsureBootstrapKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if key == "" { // reopened store: make another admin key
		_, key, err = e.auth.CreateAPIKey(ctx, authority.System, "test-admin-"+time.Now().Format("150405.000000000"), []string{authority.ScopeAdmin}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	e.adminKey = key
	if o.server.Logger == nil {
		o.server.Logger = log
	}
	e.srv = server.New(e.auth, o.server)
	g := e.srv.NewGRPCServer()
	e.grpc = g
	lis := bufconn.Listen(1 << 20)
	e.lis = lis
	go g.Serve(lis)
	e.conn, err = grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.conn.Close()
		e.srv.Shutdown()
		g.Stop()
	})
	e.sessions = pb.NewSessionServiceClient(e.conn)
	e.bans = pb.NewBanServiceClient(e.conn)
	e.events = pb.NewEventServiceClient(e.conn)
	e.keys = pb.NewKeyServiceClient(e.conn)
	e.audit = pb.NewAuditServiceClient(e.conn)
	e.apiKeys = pb.NewAPIKeyServiceClient(e.conn)
	return e
}

// as returns a context that calls with the given API key.
func as(key string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+key)
}

// admin returns a context that calls with the bootstrap admin key.
func (e *env) admin() context.Context { return as(e.adminKey) }

// keyWith creates an API key with the given scopes and returns its secret.
func (e *env) keyWith(name string, scopes ...string) string {
	e.t.Helper()
	resp, err := e.apiKeys.CreateAPIKey(e.admin(), &pb.CreateAPIKeyRequest{Name: name, Scopes: scopes})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.GetSecret()
}

// dump returns every record in the store as JSON, to compare the store
// before and after a call that must not change it.
func (e *env) dump() string {
	e.t.Helper()
	var all struct {
		Revision int64
		Sessions []storage.Session
		Bans     []storage.Ban
		Audit    []storage.AuditRecord
		APIKeys  []storage.APIKey
		Keys     []storage.SigningKey
	}
	err := e.store.View(context.Background(), func(tx storage.ReadTx) error {
		all.Revision = tx.Revision()
		for s, err := range tx.Sessions(storage.SessionQuery{}) {
			if err != nil {
				return err
			}
			all.Sessions = append(all.Sessions, s)
		}
		for b, err := range tx.Bans(storage.BanQuery{}) {
			if err != nil {
				return err
			}
			all.Bans = append(all.Bans, b)
		}
		for r, err := range tx.AuditRecords(storage.AuditQuery{}) {
			if err != nil {
				return err
			}
			all.Audit = append(all.Audit, r)
		}
		for k, err := range tx.APIKeys() {
			if err != nil {
				return err
			}
			all.APIKeys = append(all.APIKeys, k)
		}
		for k, err := range tx.SigningKeys() {
			if err != nil {
				return err
			}
			all.Keys = append(all.Keys, k)
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	b, err := json.MarshalIndent(all, "", " ")
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

// login creates a session and returns the response.
func (e *env) login(req *pb.CreateSessionRequest) *pb.CreateSessionResponse {
	e.t.Helper()
	resp, err := e.sessions.CreateSession(e.admin(), req)
	if err != nil {
		e.t.Fatalf("CreateSession(%v): %v", req, err)
	}
	return resp
}
