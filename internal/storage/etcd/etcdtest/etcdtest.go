package etcdtest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/portcullis-dev/portcullis/internal/storage/etcd"
)

// startTimeout bounds how long a member may take to become ready.
const startTimeout = 30 * time.Second

// Member is one embedded etcd server.
type Member struct {
	Name      string
	Dir       string
	ClientURL string // http://127.0.0.1:port
	PeerURL   string

	cfg  *embed.Config
	etcd *embed.Etcd
}

// Endpoint is the member's client address, as clientv3 takes it.
func (m *Member) Endpoint() string { return strings.TrimPrefix(m.ClientURL, "http://") }

// Etcd returns the running server (nil after Stop).
func (m *Member) Etcd() *embed.Etcd { return m.etcd }

// Config options of a member that tests change.
type Config struct {
	// MaxTxnOps is etcd's --max-txn-ops (default: etcd's, 128).
	MaxTxnOps uint
	// UnsafeNoFsync turns fsync off (never for benchmarks of durability).
	UnsafeNoFsync bool
}

// freePorts returns n loopback ports that were free a moment ago. The
// listeners are closed just before etcd binds them; on a busy machine
// another process could take one in between, which fails the start with a
// clear "address already in use".
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports, err := freePortsErr(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

func freePortsErr(n int) ([]int, error) {
	ports := make([]int, n)
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// StartDir runs a single-member cluster with its data in dir, for a
// program rather than a test (the benchmark harness); the caller stops it.
func StartDir(dir string, c Config) (*Member, error) {
	ports, err := freePortsErr(2)
	if err != nil {
		return nil, err
	}
	m := &Member{
		Name: "m0", Dir: dir,
		ClientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
	}
	m.cfg = newConfig(m, m.Name+"="+m.PeerURL, fmt.Sprintf("portcullis-%d", clusterSeq.Add(1)), c)
	if err := m.start(); err != nil {
		return nil, err
	}
	return m, nil
}

var clusterSeq atomic.Int64

// Start runs a single-member cluster with its data in a temporary
// directory. It is stopped when the test ends.
func Start(t testing.TB, c Config) *Member {
	t.Helper()
	return StartCluster(t, 1, c)[0]
}

// StartCluster runs a cluster of n members on loopback, each with its own
// data directory, and waits until every member is ready (a leader was
// elected). The members are stopped when the test ends.
func StartCluster(t testing.TB, n int, c Config) []*Member {
	t.Helper()
	ports := freePorts(t, 2*n)
	token := fmt.Sprintf("portcullis-test-%d", clusterSeq.Add(1))
	members := make([]*Member, n)
	var initial []string
	for i := range members {
		m := &Member{
			Name:      fmt.Sprintf("m%d", i),
			Dir:       t.TempDir(),
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
		}
		members[i] = m
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	for _, m := range members {
		m.cfg = newConfig(m, strings.Join(initial, ","), token, c)
	}
	// Members of a new cluster wait for each other: start all, then wait.
	errc := make(chan error, n)
	for _, m := range members {
		go func() { errc <- m.start() }()
	}
	for range members {
		if err := <-errc; err != nil {
			for _, m := range members {
				m.Stop()
			}
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, m := range members {
			m.Stop()
		}
	})
	return members
}

func newConfig(m *Member, initial, token string, c Config) *embed.Config {
	cfg := embed.NewConfig()
	cfg.Name = m.Name
	cfg.Dir = m.Dir
	cu, _ := url.Parse(m.ClientURL)
	pu, _ := url.Parse(m.PeerURL)
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = initial
	cfg.InitialClusterToken = token
	cfg.ClusterState = embed.ClusterStateFlagNew
	// Short ticks: elections after a member is lost take a fraction of a
	// second instead of the production default's seconds.
	cfg.TickMs = 50
	cfg.ElectionMs = 500
	if c.MaxTxnOps > 0 {
		cfg.MaxTxnOps = c.MaxTxnOps
	}
	cfg.UnsafeNoFsync = c.UnsafeNoFsync
	// Errors only, to stderr (go test shows it for failing packages).
	lg := zap.NewNop()
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(zap.ErrorLevel)
	zc.OutputPaths, zc.ErrorOutputPaths = []string{"stderr"}, []string{"stderr"}
	if l, err := zc.Build(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return quietClose{c} })); err == nil {
		lg = l
	}
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg.With(zap.String("member", m.Name)))
	return cfg
}

func (m *Member) start() error {
	e, err := embed.StartEtcd(m.cfg)
	if err != nil {
		return fmt.Errorf("etcdtest: start %s: %w", m.Name, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return fmt.Errorf("etcdtest: %s failed: %w", m.Name, err)
	case <-time.After(startTimeout):
		e.Close()
		return fmt.Errorf("etcdtest: %s not ready after %v", m.Name, startTimeout)
	}
	m.etcd = e
	return nil
}

// Stop stops the member (as a crash would, but letting it close its files).
// Stopping twice is harmless.
func (m *Member) Stop() {
	if m.etcd != nil {
		m.etcd.Close()
		m.etcd = nil
	}
}

// Endpoints returns the client addresses of members.
func Endpoints(members ...*Member) []string {
	out := make([]string, len(members))
	for i, m := range members {
		out[i] = m.Endpoint()
	}
	return out
}

// Client returns a client of the members, closed when the test ends.
func Client(t testing.TB, members ...*Member) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: Endpoints(members...), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

var prefixSeq atomic.Int64

// NewPrefix returns a key prefix no other store of this process uses.
func NewPrefix() string { return fmt.Sprintf("/test-%d", prefixSeq.Add(1)) }

// Open opens a store over members under a fresh prefix (or opts.Prefix),
// closed when the test ends.
func Open(t testing.TB, opts etcd.Options, members ...*Member) *etcd.Store {
	t.Helper()
	if opts.Prefix == "" {
		opts.Prefix = NewPrefix()
	}
	opts.Endpoints = Endpoints(members...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := etcd.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// quietClose drops the errors etcd logs when a member is closed normally,
// and the one a new member logs before its first snapshot.
type quietClose struct{ zapcore.Core }

func (q quietClose) With(f []zapcore.Field) zapcore.Core { return quietClose{q.Core.With(f)} }

func (q quietClose) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if strings.HasPrefix(e.Message, "setting up serving from embedded etcd failed") ||
		strings.HasPrefix(e.Message, "failed to update storage version") {
		return ce
	}
	return q.Core.Check(e, ce)
}
