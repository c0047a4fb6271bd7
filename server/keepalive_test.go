package server_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt/bolttest"
	"github.com/portcullis-dev/portcullis/server"
)

// pipeListener hands the server one end of each net.Pipe a client dials.
// Unlike bufconn or TCP, a goroutine blocked reading a net.Pipe is durably
// blocked in a synctest bubble, so the bubble's clock can advance.
type pipeListener struct {
	conns     chan net.Conn
	closeOnce sync.Once
	closed    chan struct{}
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error { l.closeOnce.Do(func() { close(l.closed) }); return nil }

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) dial(ctx context.Context, _ string) (net.Conn, error) {
	client, srv := net.Pipe()
	select {
	case l.conns <- srv:
		return client, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// A client that pings more often than Limits.KeepaliveMinTime is sent
// GOAWAY "too_many_pings" and disconnected; its call in flight fails with
// Unavailable. One pinging less often is not (which grpc's own default
// minimum, 5 minutes, would not allow: the limit is what is enforced). A
// real grpc-go client pings at most every 10 s (it raises a shorter
// keepalive Time to that), so the test runs in a synctest bubble, where
// those seconds pass as soon as everything waits, over net.Pipe.
func TestKeepaliveTooManyPings(t *testing.T) {
	t.Run("TooFast", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			took, err := watchWhilePinging(t, time.Hour)
			if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "too_many_pings") {
				t.Fatalf("Watch of a client pinging every 10s, server's minimum 1h: %v, want Unavailable after GOAWAY too_many_pings", err)
			}
			// The server forgives two pings too close to the one before
			// (the client's first, a BDP ping, came with the snapshot).
			if took < 20*time.Second {
				t.Errorf("disconnected after %v of pings every 10s, want at least 20s", took)
			}
		})
	})
	t.Run("Allowed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			if _, err := watchWhilePinging(t, 5*time.Second); err != nil {
				t.Fatalf("Watch of a client pinging every 10s, server's minimum 5s: %v, want it open after 2 minutes", err)
			}
		})
	})
}

// watchWhilePinging serves an authority whose KeepaliveMinTime is minTime
// and holds a Watch stream past its snapshot from a client pinging every
// 10 s. It returns how long the stream lasted and its error, or nil
// when it was still open after 2 minutes (of the bubble's clock).
func watchWhilePinging(t *testing.T, minTime time.Duration) (time.Duration, error) {
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	store := bolttest.OpenPath(t, t.TempDir()+"/portcullis.db", bolt.Options{Logger: log})
	auth := authority.New(store, authority.Config{Logger: log})
	ctx := context.Background()
	if err := auth.EnsureSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	key, err := auth.EnsureBootstrapKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(auth, server.Options{Logger: log,
		// No checkpoint on the Watch stream: data from the server would
		// forgive the client's pings.
		CheckpointInterval: 10 * time.Hour,
		Limits:             server.Limits{KeepaliveMinTime: minTime}})
	g := srv.NewGRPCServer()
	lis := newPipeListener()
	served := make(chan struct{})
	go func() { defer close(served); g.Serve(lis) }()
	defer func() {
		srv.Shutdown()
		g.Stop()
		<-served
	}()

	conn, err := grpc.NewClient("passthrough:///pipe", grpc.WithContextDialer(lis.dial),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: time.Minute, PermitWithoutStream: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	wctx, cancel := context.WithCancel(as(key))
	defer cancel()
	stream, err := pb.NewEventServiceClient(conn).Watch(wctx, &pb.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ended := make(chan error, 1)
	go func() {
		var err error
		for err == nil {
			_, err = stream.Recv()
		}
		ended <- err
	}()
	select {
	case err := <-ended:
		return time.Since(start), err
	case <-time.After(2 * time.Minute): // the bubble's clock: no real wait
		cancel()
		<-ended
		return time.Since(start), nil
	}
}
