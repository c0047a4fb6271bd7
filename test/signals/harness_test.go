package signals_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/test/serveproc"
)

// guard bounds every wait of these tests: a hang guard, far beyond what a
// busy machine needs, never a performance bound.
const guard = 2 * time.Minute

// fastReconnect: clients reconnect within ~100 ms of an authority's
// restart.
var fastReconnect = grpc.WithConnectParams(grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 100 * time.Millisecond},
	MinConnectTimeout: time.Second,
})

// node is one `portcullis serve` process on a bbolt file of its own, with
// its gRPC and HTTP listeners on loopback; its issuer (the "iss" of its
// access tokens) and its Shared Signals issuer are both its HTTP URL, so
// that another authority can trust its tokens and follow its signals.
type node struct {
	t     testing.TB
	name  string
	bin   string
	args  []string
	data  string
	grpc  string
	url   string // http://<its HTTP listener>
	proc  *serveproc.Proc
	admin *client.Client
}

func startNode(t testing.TB, name string, extra ...string) *node {
	t.Helper()
	return startNodeIn(t, name, filepath.Join(t.TempDir(), name), extra...)
}

// startReplica starts another replica of of, which must keep its state in
// etcd (store: its --store and --etcd-prefix arguments): same issuer and
// public URL, its own listeners, the admin key of.
func startReplica(t testing.TB, of *node, name string, store ...string) *node {
	t.Helper()
	data := filepath.Join(t.TempDir(), name)
	key, err := os.ReadFile(filepath.Join(of.data, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "admin.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	return startNodeIn(t, name, data, append(store, "--issuer", of.url, "--public-url", of.url)...)
}

func startNodeIn(t testing.TB, name, data string, extra ...string) *node {
	t.Helper()
	n := &node{t: t, name: name, bin: serveproc.Build(t), data: data, grpc: serveproc.FreeAddr(t)}
	httpAddr := serveproc.FreeAddr(t)
	n.url = "http://" + httpAddr
	n.args = append([]string{
		"--listen", n.grpc, "--http-listen", httpAddr, "--data", n.data, "--log-level", "info",
		"--issuer", n.url, "--public-url", n.url,
		// Transmitters, receivers and issuers over plain http on loopback.
		"--insecure",
		"--checkpoint-interval", "200ms",
		// One API key and one address write everything: no abuse limits.
		"--refresh-rate", "-1", "--create-session-rate", "-1",
	}, extra...)
	n.proc = serveproc.Start(t, n.bin, n.args...)
	t.Cleanup(func() { n.proc.Kill() })
	key, err := os.ReadFile(filepath.Join(n.data, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	n.admin = n.dial(strings.TrimSpace(string(key)))
	return n
}

func (n *node) dial(key string) *client.Client {
	n.t.Helper()
	c, err := client.Dial(n.grpc, client.WithAPIKey(key), client.WithInsecure(), client.WithDialOptions(fastReconnect))
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { c.Close() })
	return c
}

// restart kills the process (SIGKILL: nothing flushed on the way out) and
// starts it again on the same data and addresses.
func (n *node) restart() {
	n.t.Helper()
	n.proc.Kill()
	n.proc = serveproc.Start(n.t, n.bin, n.args...)
}

func (n *node) apiKey(name string, scopes ...string) string {
	n.t.Helper()
	resp, err := n.admin.APIKeys.CreateAPIKey(ctx(n.t), &pb.CreateAPIKeyRequest{Name: name, Scopes: scopes})
	if err != nil {
		n.t.Fatal(err)
	}
	return resp.GetSecret()
}

func (n *node) session(tenant, user string) *pb.CreateSessionResponse {
	n.t.Helper()
	resp, err := n.admin.Sessions.CreateSession(ctx(n.t), &pb.CreateSessionRequest{TenantId: tenant, UserId: user})
	if err != nil {
		n.t.Fatal(err)
	}
	return resp
}

func (n *node) ban(tenant, user, reason string) *pb.Ban {
	n.t.Helper()
	resp, err := n.admin.Bans.CreateBan(ctx(n.t), &pb.CreateBanRequest{TenantId: tenant,
		Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: user}}, Reason: reason})
	if err != nil {
		n.t.Fatal(err)
	}
	return resp.GetBan()
}

// trust makes n accept the access tokens of other as an external issuer's
// (through other's discovery document), in tenant.
func (n *node) trust(other *node, tenant string) {
	n.t.Helper()
	_, err := n.admin.Issuers.CreateIssuer(ctx(n.t), &pb.CreateIssuerRequest{Issuer: &pb.Issuer{
		Issuer: other.url, TenantId: tenant, Audiences: []string{"portcullis"}, Algorithms: []string{"EdDSA"}}})
	if err != nil {
		n.t.Fatal(err)
	}
}

// follow makes n a Shared Signals receiver of other's events, delivered
// by push or poll; its bans go to tenant.
func (n *node) follow(other *node, delivery, tenant string) *pb.Transmitter {
	n.t.Helper()
	key := other.apiKey("receiver-"+n.name+"-"+delivery, "signals")
	resp, err := pb.NewSignalServiceClient(n.admin.Conn()).CreateTransmitter(ctx(n.t), &pb.CreateTransmitterRequest{
		ConfigUrl: other.url + "/.well-known/ssf-configuration", Delivery: delivery, BearerToken: key,
		TenantId: tenant, BanDuration: durationpb.New(24 * time.Hour), Description: "e2e"})
	if err != nil {
		n.t.Fatal(err)
	}
	return resp.GetTransmitter()
}

func (n *node) mirror() *client.Mirror {
	n.t.Helper()
	m, stop, err := client.StartMirror(ctx(n.t), n.admin, client.MirrorOptions{Issuer: n.url, StaleAfter: time.Hour}) // its tokens carry its URL as iss
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(stop)
	return m
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), guard)
	t.Cleanup(cancel)
	return c
}

// waitFor polls cond until it holds, or fails the test after the guard.
func waitFor(t testing.TB, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	var last error
	for time.Since(start) < guard {
		if last = cond(); last == nil {
			return time.Since(start)
		}
		time.Sleep(2 * time.Millisecond) // a poll interval, not a wait for something
	}
	t.Fatalf("%s: not within %v: %v", what, guard, last)
	return 0
}

// refuses is a condition: the mirror refuses tok with want.
func refuses(m *client.Mirror, tok string, want error) func() error {
	return func() error {
		_, err := m.Check(context.Background(), tok, client.CheckInput{})
		if !errors.Is(err, want) {
			return fmt.Errorf("check: %v, want %v", err, want)
		}
		return nil
	}
}

// admits is a condition: the mirror admits tok.
func admits(m *client.Mirror, tok string) func() error {
	return func() error {
		_, err := m.Check(context.Background(), tok, client.CheckInput{})
		return err
	}
}
