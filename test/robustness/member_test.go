package robustness

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// memberEnv carries a member's configuration to the test binary started
// as that member (TestMain).
const memberEnv = "PORTCULLIS_ROBUSTNESS_ETCD_MEMBER"

// TestMain runs the test binary as one etcd member when memberEnv says so:
// members are processes of their own, so that a fault can SIGKILL one.
func TestMain(m *testing.M) {
	if cfg := os.Getenv(memberEnv); cfg != "" {
		runMember(cfg) // never returns
	}
	os.Exit(m.Run())
}

// memberConfig is what a member process needs.
type memberConfig struct {
	Name      string
	Dir       string
	ClientURL string
	// PeerListen is the member's own peer port; PeerAdvertise the address
	// of the toxiproxy proxy in front of it, which the other members use.
	PeerListen, PeerAdvertise string
	InitialCluster            string
	Token                     string
	Existing                  bool
}

// runMember runs one member until it is killed, printing "ready" on
// stdout once it serves.
func runMember(raw string) {
	var c memberConfig
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		fmt.Fprintln(os.Stderr, "member config:", err)
		os.Exit(2)
	}
	cfg := embed.NewConfig()
	cfg.Name, cfg.Dir = c.Name, c.Dir
	cu, _ := url.Parse(c.ClientURL)
	pl, _ := url.Parse(c.PeerListen)
	pa, _ := url.Parse(c.PeerAdvertise)
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pl}, []url.URL{*pa}
	cfg.InitialCluster, cfg.InitialClusterToken = c.InitialCluster, c.Token
	cfg.ClusterState = embed.ClusterStateFlagNew
	if c.Existing {
		cfg.ClusterState = embed.ClusterStateFlagExisting
	}
	// Short ticks, as etcdtest: an election takes a fraction of a second.
	cfg.TickMs, cfg.ElectionMs = 50, 500
	// A SIGKILL loses no write the kernel has: only a power loss would
	// need the fsync, which would make every write take milliseconds.
	cfg.UnsafeNoFsync = true
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(zap.ErrorLevel)
	zc.OutputPaths, zc.ErrorOutputPaths = []string{"stderr"}, []string{"stderr"}
	if lg, err := zc.Build(); err == nil {
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg.With(zap.String("member", c.Name)))
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		os.Exit(1)
	}
	select {
	case <-e.Server.ReadyNotify():
		fmt.Println("ready")
	case err := <-e.Err():
		fmt.Fprintln(os.Stderr, "etcd:", err)
		os.Exit(1)
	}
	err = <-e.Err()
	fmt.Fprintln(os.Stderr, "etcd:", err)
	os.Exit(1)
}

// memberProc is a member process, started by the test.
type memberProc struct {
	cfg  memberConfig
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	tail []string
}

// start starts the member process; ready is closed once it serves.
func (m *memberProc) start(t *testing.T) (ready chan struct{}) {
	t.Helper()
	raw, err := json.Marshal(m.cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), memberEnv+"="+string(raw))
	// Dies with the test binary, even one killed by go test's timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m.cmd, m.done = cmd, make(chan struct{})
	ready = make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "ready" {
				close(ready)
			}
		}
	}()
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			m.mu.Lock()
			if len(m.tail) == 20 {
				m.tail = m.tail[1:]
			}
			m.tail = append(m.tail, sc.Text())
			m.mu.Unlock()
		}
	}()
	go func() {
		wg.Wait()
		cmd.Wait()
		close(m.done)
	}()
	return ready
}

// waitReady waits until the member serves, failing the test if it exits
// first or takes more than five minutes (a hang guard).
func (m *memberProc) waitReady(t *testing.T, ready chan struct{}) {
	t.Helper()
	timer := time.NewTimer(5 * time.Minute)
	defer timer.Stop()
	select {
	case <-ready:
	case <-m.done:
		t.Fatalf("etcd member %s exited before serving:\n%s", m.cfg.Name, m.logs())
	case <-timer.C:
		t.Fatalf("etcd member %s not ready after five minutes:\n%s", m.cfg.Name, m.logs())
	}
}

func (m *memberProc) logs() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.tail, "\n")
}

// kill sends SIGKILL and waits for the process to be gone.
func (m *memberProc) kill() {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.done
}

// restart starts a killed member again on its data directory, as a member
// of the existing cluster.
func (m *memberProc) restart(t *testing.T) {
	t.Helper()
	m.cfg.Existing = true
	m.waitReady(t, m.start(t))
}
