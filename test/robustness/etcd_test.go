package robustness

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/portcullis-dev/portcullis/client"
	"github.com/portcullis-dev/portcullis/test/serveproc"
)

// etcdReplicas is how many authority replicas share the etcd store.
const etcdReplicas = 2

// etcdCluster is three etcd members (processes of the test binary, see
// member_test.go, each with its own data directory and ports) and authority replicas as `portcullis serve --store etcd://...`
// processes. Each replica reaches every member through a toxiproxy proxy
// of its own, so that the link between one replica and etcd can be cut
// or slowed without touching the others.
type etcdCluster struct {
	members []*memberProc
	// peers are the proxies in front of each member's peer port, which
	// the other members dial: a blackhole there cuts the member off.
	peers    []*toxiproxy.Proxy
	cli      *clientv3.Client // the test's own, for leader and hash checks
	bin      string
	replicas []*etcdReplica
	load     []*client.Client
	watch    []*client.Client
	faults   rounds
}

type etcdReplica struct {
	args    []string
	proc    *serveproc.Proc
	proxies []*toxiproxy.Proxy
}

func startEtcd(t *testing.T) *etcdCluster {
	e := &etcdCluster{bin: serveproc.Build(t), faults: rounds{kinds: etcdFaults}}
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	e.startMembers(t, server)
	var err error
	e.cli, err = clientv3.New(clientv3.Config{Endpoints: e.endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.cli.Close() })
	const prefix = "/robustness"
	var addrs []string
	for i := range etcdReplicas {
		r := &etcdReplica{}
		var eps []string
		for j, ep := range e.endpoints() {
			p := toxiproxy.NewProxy(server, fmt.Sprintf("r%d-m%d", i, j), "127.0.0.1:0", ep)
			if err := p.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Stop)
			r.proxies = append(r.proxies, p)
			eps = append(eps, p.Listen)
		}
		addr := serveproc.FreeAddr(t)
		addrs = append(addrs, addr)
		r.args = []string{
			"--listen", addr, "--http-listen", "", "--data", filepath.Join(t.TempDir(), "data"), "--log-level", "info",
			"--store", "etcd://" + strings.Join(eps, ","), "--etcd-prefix", prefix,
			"--checkpoint-interval", "200ms", "--access-ttl", "2h",
			"--refresh-rate", "-1", "--create-session-rate", "-1",
		}
		r.proc = serveproc.Start(t, e.bin, r.args...)
		t.Cleanup(func() { r.proc.Kill() })
		e.replicas = append(e.replicas, r)
	}
	// The first replica bootstrapped the store and wrote the admin key.
	key := readKey(t, e.replicas[0].args[5])
	dial := func(target string) *client.Client {
		c, err := client.Dial(target, client.WithAPIKey(key), client.WithInsecure(), client.WithDialOptions(fastReconnect))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	for range 4 {
		e.load = append(e.load, dial(strings.Join(addrs, ",")))
	}
	for _, a := range addrs {
		e.watch = append(e.watch, dial(a))
	}
	return e
}

func (e *etcdCluster) loadClients() []*client.Client  { return e.load }
func (e *etcdCluster) watchClients() []*client.Client { return e.watch }
func (e *etcdCluster) contiguous() bool               { return false }
func (e *etcdCluster) retained(rev, head int64) bool  { return true } // no compaction in a run

// startMembers starts three etcd member processes, each with its own data
// directory and ports, and a proxy in front of its peer port.
func (e *etcdCluster) startMembers(t *testing.T, server *toxiproxy.ApiServer) {
	var initial []string
	for i := range 3 {
		m := &memberProc{cfg: memberConfig{
			Name: fmt.Sprintf("m%d", i), Dir: t.TempDir(), Token: "robustness",
			ClientURL: "http://" + serveproc.FreeAddr(t), PeerListen: "http://" + serveproc.FreeAddr(t),
		}}
		p := toxiproxy.NewProxy(server, "peer-"+m.cfg.Name, "127.0.0.1:0", strings.TrimPrefix(m.cfg.PeerListen, "http://"))
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Stop)
		m.cfg.PeerAdvertise = "http://" + p.Listen
		initial = append(initial, m.cfg.Name+"="+m.cfg.PeerAdvertise)
		e.members, e.peers = append(e.members, m), append(e.peers, p)
	}
	readies := make([]chan struct{}, len(e.members))
	for i, m := range e.members {
		m.cfg.InitialCluster = strings.Join(initial, ",")
		readies[i] = m.start(t)
		t.Cleanup(m.kill)
	}
	// Members of a new cluster wait for each other: start all, then wait.
	for i, m := range e.members {
		m.waitReady(t, readies[i])
	}
}

func (e *etcdCluster) endpoints() []string {
	var eps []string
	for _, m := range e.members {
		eps = append(eps, strings.TrimPrefix(m.cfg.ClientURL, "http://"))
	}
	return eps
}

// leader returns the index of the member that leads, or -1 when none
// answers that it does.
func (e *etcdCluster) leader() int {
	for i, ep := range e.endpoints() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := e.cli.Status(ctx, ep)
		cancel()
		if err == nil && st.Leader == st.Header.GetMemberId() {
			return i
		}
	}
	return -1
}

// hold is how long a fault lasts before it is undone.
func hold(rng *rand.Rand) time.Duration { return time.Duration(200+rng.IntN(1300)) * time.Millisecond }

// etcdFaults are the kinds of fault of the etcd run, injected in
// shuffled rounds so that even a small run sees most of them.
var etcdFaults = []string{
	"kill-etcd-leader", "kill-etcd-follower", "kill-authority-replica",
	"partition-replica-etcd", "delay-replica-etcd", "blackhole-etcd-peer", "delay-etcd-peer",
}

func (e *etcdCluster) inject(t *testing.T, rng *rand.Rand) string {
	kind := e.faults.next(rng)
	switch kind {
	case "kill-etcd-leader", "kill-etcd-follower": // SIGKILL of a member
		l := e.leader()
		i := rng.IntN(len(e.members))
		switch {
		case l < 0:
			kind = "kill-etcd-member" // no leader known: any member
		case kind == "kill-etcd-leader":
			i = l
		case i == l:
			i = (l + 1) % len(e.members)
		}
		e.members[i].kill()
		time.Sleep(hold(rng)) // the fault's length, part of the schedule
		e.members[i].restart(t)
	case "blackhole-etcd-peer", "delay-etcd-peer": // a member cut off from its peers, or slowed
		p := e.peers[rng.IntN(len(e.peers))]
		toxic := `{"type":"timeout","attributes":{"timeout":0}}`
		if kind == "delay-etcd-peer" {
			toxic = `{"type":"latency","attributes":{"latency":200,"jitter":100}}`
		}
		blackhole(t, p, toxic)
		time.Sleep(hold(rng))
		p.Toxics.ResetToxics(context.Background())
	case "kill-authority-replica":
		r := e.replicas[rng.IntN(len(e.replicas))]
		r.proc.Kill()
		r.proc = serveproc.Start(t, e.bin, r.args...)
	default: // the links between a replica and etcd: cut or slowed
		r := e.replicas[rng.IntN(len(e.replicas))]
		toxic := `{"type":"timeout","attributes":{"timeout":0}}`
		if kind == "delay-replica-etcd" {
			toxic = `{"type":"latency","attributes":{"latency":150,"jitter":100}}`
		}
		for _, p := range r.proxies {
			blackhole(t, p, toxic)
		}
		time.Sleep(hold(rng))
		for _, p := range r.proxies {
			p.Toxics.ResetToxics(context.Background())
		}
	}
	return kind
}

// blackhole adds toxic (toxiproxy's JSON, without name and stream) to both
// directions of p.
func blackhole(t *testing.T, p *toxiproxy.Proxy, toxic string) {
	for _, stream := range []string{"upstream", "downstream"} {
		body := strings.Replace(toxic, "{", fmt.Sprintf(`{"name":"fault-%s","stream":"%s",`, stream, stream), 1)
		if _, err := p.Toxics.AddToxicJson(bytes.NewReader([]byte(body))); err != nil {
			t.Fatalf("toxic %s: %v", body, err)
		}
	}
}

// finish checks etcd's own consistency: every member has the same hash
// of its key-value store at the same revision (etcd's corruption check).
func (e *etcdCluster) finish(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // hang guard
	defer cancel()
	for _, r := range e.replicas {
		r.proc.Kill()
	}
	st, err := e.cli.Get(ctx, "/", clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	rev := st.Header.Revision
	var hashes []uint32
	for i, m := range e.members {
		var h *clientv3.HashKVResponse
		for {
			// A member may still be applying the last entries: HashKV at
			// rev waits for nothing, so retry until it has them.
			if h, err = e.cli.HashKV(ctx, e.endpoints()[i], rev); err == nil || ctx.Err() != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("HashKV of %s at %d: %v", m.cfg.Name, rev, err)
		}
		hashes = append(hashes, h.Hash)
	}
	for i, h := range hashes {
		if h != hashes[0] {
			t.Errorf("etcd members disagree: %s has hash %d at revision %d, %s %d", e.members[i].cfg.Name, h, rev, e.members[0].cfg.Name, hashes[0])
		}
	}
}

// TestRobustnessEtcd is the etcd run: the mixed load against authority
// replicas over a three-member etcd cluster, with members, replicas and
// the links between them failing at random moments.
func TestRobustnessEtcd(t *testing.T) {
	sz := runSize(t)
	r := robustness(t, "etcd", startEtcd(t), sz, runSeed(t))
	if !r.OK() {
		t.Fatal("the run failed its checks (above)")
	}
}
