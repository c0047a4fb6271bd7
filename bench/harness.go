package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/server"
)

type config struct {
	mirrors  []int
	ops      int
	callers  []int
	duration time.Duration
	smoke    bool
	dir      string
	args     []string

	progress              bool
	memBans, memRevoked   int
	fanout, fanoutWriters int
	fanoutDuration        time.Duration
	cpuprofile            string
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// latencyRow is one enforcement measurement: op, mirror count, samples.
type latencyRow struct {
	op      string
	mirrors int
	samples []time.Duration
	synced  time.Duration // start of the mirrors until all had their first snapshot
}

type throughputRow struct {
	op      string
	callers int
	ops     int64
	elapsed time.Duration
}

type results struct {
	latency    []latencyRow
	throughput []throughputRow
	memory     *memoryRow
	fanout     *fanoutRow
}

// authorityEnv is the authority under test.
type authorityEnv struct {
	store *bolt.Store
	srv   *server.Server
	g     *grpc.Server
	addr  string
	key   string
}

func startAuthority(dir string) (*authorityEnv, error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	store, err := bolt.Open(filepath.Join(dir, "portcullis.db"), bolt.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	auth := authority.New(store, authority.Config{Logger: log})
	ctx := context.Background()
	if err := auth.EnsureSigningKey(ctx); err != nil {
		return nil, err
	}
	key, err := auth.EnsureBootstrapKey(ctx)
	if err != nil {
		return nil, err
	}
	// The harness is one API key on one address: the abuse limits are off.
	srv := server.New(auth, server.Options{Logger: log, CheckpointInterval: time.Second, Limits: server.Limits{
		RefreshPerSecond: -1, CreateSessionPerSecond: -1, MaxWatchersPerKey: -1,
		FailedAuthPerSecond: -1,
	}})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := srv.NewGRPCServer()
	go g.Serve(lis)
	return &authorityEnv{store: store, srv: srv, g: g, addr: lis.Addr().String(), key: key}, nil
}

func (a *authorityEnv) close() {
	a.srv.Shutdown()
	a.g.Stop()
	a.store.Close()
}

func (a *authorityEnv) dial() (*client.Client, error) {
	return client.Dial(a.addr, client.WithAPIKey(a.key), client.WithInsecure())
}

// target is the change the latency loop waits for: every mirror's OnEvent
// stamps the time it applied it.
type target struct {
	match     func(*pb.Event) bool
	remaining atomic.Int64
	last      atomic.Int64 // unix ns of the latest mirror to apply it
	done      chan struct{}
}

func run(cfg config, out io.Writer) (*results, error) {
	dir := cfg.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "portcullis-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	fmt.Fprintf(out, "# portcullis bench\n")
	fmt.Fprintf(out, "machine: %d cores (GOMAXPROCS %d), %s %s/%s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(out, "flags: %s\n", strings.Join(cfg.args, " "))
	fmt.Fprintf(out, "authority: bbolt in %s, gRPC on loopback TCP, mirrors in-process (one connection each)\n\n", dir)

	a, err := startAuthority(dir)
	if err != nil {
		return nil, err
	}
	defer a.close()
	res := &results{}

	// Durable write throughput first, with no mirror attached.
	fmt.Fprintf(out, "| durable writes | callers | ops | writes/s |\n| --- | ---: | ---: | ---: |\n")
	for _, op := range []string{"CreateBan", "CreateSession", "RefreshSession"} {
		for _, n := range cfg.callers {
			row, err := throughput(a, op, n, cfg.duration)
			if err != nil {
				return nil, err
			}
			res.throughput = append(res.throughput, row)
			fmt.Fprintf(out, "| %s | %d | %d | %.0f |\n", op, n, row.ops, float64(row.ops)/row.elapsed.Seconds())
		}
	}
	fmt.Fprintln(out)

	fmt.Fprintf(out, "| enforcement (ack -> every mirror applied; progress reports %v) | mirrors | ops | p50 | p99 | max |\n| --- | ---: | ---: | ---: | ---: | ---: |\n", map[bool]string{true: "on", false: "off"}[cfg.progress])
	for _, n := range cfg.mirrors {
		rows, err := enforcement(a, n, cfg.ops, cfg.progress)
		if err != nil {
			return nil, fmt.Errorf("%d mirrors: %w", n, err)
		}
		for _, r := range rows {
			res.latency = append(res.latency, r)
			s := slices.Clone(r.samples)
			slices.Sort(s)
			fmt.Fprintf(out, "| %s | %d | %d | %v | %v | %v |\n", r.op, r.mirrors, len(s), pct(s, 50), pct(s, 99), s[len(s)-1])
		}
		if len(rows) > 0 {
			fmt.Fprintf(out, "(%d mirrors started and all had their first snapshot in %v)\n", n, rows[0].synced.Round(time.Millisecond))
		}
	}
	fmt.Fprintln(out)

	if cfg.memBans > 0 {
		sub := filepath.Join(dir, "memory")
		if err := os.MkdirAll(sub, 0o700); err != nil {
			return nil, err
		}
		r, err := mirrorMemory(sub, cfg.memBans, cfg.memRevoked, 64)
		if err != nil {
			return nil, fmt.Errorf("mirror memory: %w", err)
		}
		res.memory = &r
		n := max(1, r.bans+r.revoked)
		fmt.Fprintf(out, "| mirror memory (one mirror, loaded through Watch) | bans | revoked sessions | heap in use | heap alloc | per entry (alloc) | per ban (alloc, all of it) |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		fmt.Fprintf(out, "| after GC, with minus without the mirror | %d | %d | %d B | %d B | %d B | %d B |\n", r.bans, r.revoked, r.heapInuse, r.heapAlloc, r.heapAlloc/int64(n), r.heapAlloc/int64(max(1, r.bans)))
		fmt.Fprintf(out, "(state written in %v with 64 callers; the mirror's first snapshot took %v)\n\n", r.load.Round(time.Millisecond), r.sync.Round(time.Millisecond))
	}
	if cfg.fanout > 0 {
		sub := filepath.Join(dir, "fanout")
		if err := os.MkdirAll(sub, 0o700); err != nil {
			return nil, err
		}
		r, err := fanout(sub, cfg.fanout, cfg.fanoutWriters, cfg.fanoutDuration)
		if err != nil {
			return nil, fmt.Errorf("fan-out: %w", err)
		}
		res.fanout = &r
		fmt.Fprintf(out, "| Watch fan-out (raw Recv loops) | subscribers | writers | bans written | writes/s | events delivered | delivered/s (until drained) | drain after writes |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		fmt.Fprintf(out, "| CreateBan -> every subscriber | %d | %d | %d | %.0f | %d | %.0f | %v |\n", r.subscribers, r.writers, r.writes,
			float64(r.writes)/r.writing.Seconds(), r.delivered, float64(r.delivered)/r.drained.Seconds(), (r.drained - r.writing).Round(time.Millisecond))
	}
	return res, nil
}

func pct(s []time.Duration, p int) time.Duration {
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))].Round(time.Microsecond)
}

func throughput(a *authorityEnv, op string, callers int, d time.Duration) (throughputRow, error) {
	c, err := a.dial()
	if err != nil {
		return throughputRow{}, err
	}
	defer c.Close()
	ctx := context.Background()
	// Each caller refreshes its own session's chain.
	tokens := make([]string, callers)
	if op == "RefreshSession" {
		for i := range tokens {
			r, err := c.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{UserId: fmt.Sprintf("rt-%d-%d", callers, i)})
			if err != nil {
				return throughputRow{}, err
			}
			tokens[i] = r.GetRefreshToken()
		}
	}
	var ops atomic.Int64
	var firstErr atomic.Pointer[error]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				switch op {
				case "CreateBan":
					_, err = c.Bans.CreateBan(ctx, &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: fmt.Sprintf("tb-%d-%d-%d", callers, i, n)}}})
				case "CreateSession":
					_, err = c.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{UserId: fmt.Sprintf("ts-%d-%d-%d", callers, i, n), ClientIp: "192.0.2.1"})
				case "RefreshSession":
					var r *pb.RefreshSessionResponse
					r, err = c.Sessions.RefreshSession(ctx, &pb.RefreshSessionRequest{RefreshToken: tokens[i]})
					if err == nil {
						tokens[i] = r.GetRefreshToken()
					}
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				ops.Add(1)
			}
		}()
	}
	t := time.NewTimer(d)
	<-t.C
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)
	if p := firstErr.Load(); p != nil {
		return throughputRow{}, fmt.Errorf("%s with %d callers: %w", op, callers, *p)
	}
	return throughputRow{op: op, callers: callers, ops: ops.Load(), elapsed: elapsed}, nil
}

// enforcement measures, with n mirrors following the authority, how long
// after the acknowledgement of a CreateBan, a RevokeSession and a LiftBan
// every mirror has applied it (and so refuses, or accepts again, the
// user's token). Each operation runs alone.
func enforcement(a *authorityEnv, n, ops int, progress bool) ([]latencyRow, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cur atomic.Pointer[target]
	onEvent := func(e *pb.Event) {
		t := cur.Load()
		if t == nil || !t.match(e) {
			return
		}
		for { // mirrors race: keep the latest time
			old := t.last.Load()
			now := time.Now().UnixNano()
			if now <= old || t.last.CompareAndSwap(old, now) {
				break
			}
		}
		if t.remaining.Add(-1) == 0 {
			close(t.done)
		}
	}
	quiet := slog.New(slog.DiscardHandler)
	mirrors := make([]*client.Mirror, n)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	started := time.Now()
	for i := range mirrors {
		c, err := a.dial()
		if err != nil {
			return nil, err
		}
		defer c.Close()
		m := client.NewMirror(c, client.MirrorOptions{OnEvent: onEvent, Logger: quiet, CacheSize: 1024, DisableProgress: !progress})
		mirrors[i] = m
		wg.Add(1)
		go func() { defer wg.Done(); m.Run(ctx) }()
	}
	sctx, scancel := context.WithTimeout(ctx, 2*time.Minute)
	defer scancel()
	for _, m := range mirrors {
		if err := m.WaitSynced(sctx); err != nil {
			return nil, fmt.Errorf("mirror sync: %w", err)
		}
	}
	synced := time.Since(started)
	c, err := a.dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()

	// measure runs call with a fresh target and returns ack -> all applied.
	measure := func(match func(*pb.Event) bool, call func() error) (time.Duration, error) {
		t := &target{match: match, done: make(chan struct{})}
		t.remaining.Store(int64(n))
		cur.Store(t)
		defer cur.Store(nil)
		if err := call(); err != nil {
			return 0, err
		}
		ack := time.Now()
		timeout := time.NewTimer(30 * time.Second)
		defer timeout.Stop()
		select {
		case <-t.done:
		case <-timeout.C:
			return 0, fmt.Errorf("%d of %d mirrors never applied the change", t.remaining.Load(), n)
		}
		return max(0, time.Unix(0, t.last.Load()).Sub(ack)), nil
	}
	rows := []latencyRow{{op: "CreateBan (user)", mirrors: n, synced: synced}, {op: "RevokeSession", mirrors: n, synced: synced}, {op: "LiftBan", mirrors: n, synced: synced}}
	for i := range ops {
		user := fmt.Sprintf("el-%d-%d", n, i)
		sess, err := c.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{UserId: user + "-s"})
		if err != nil {
			return nil, err
		}
		var banID string
		d, err := measure(func(e *pb.Event) bool { return e.GetBanCreated().GetSubject().GetUserId() == user }, func() error {
			r, err := c.Bans.CreateBan(ctx, &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: user}}})
			banID = r.GetBan().GetBanId()
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("CreateBan: %w", err)
		}
		rows[0].samples = append(rows[0].samples, d)
		sid := sess.GetSession().GetSessionId()
		d, err = measure(func(e *pb.Event) bool { return e.GetSessionRevoked().GetSessionId() == sid }, func() error {
			_, err := c.Sessions.RevokeSession(ctx, &pb.RevokeSessionRequest{SessionId: sid})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("RevokeSession: %w", err)
		}
		rows[1].samples = append(rows[1].samples, d)
		d, err = measure(func(e *pb.Event) bool { return e.GetBanLifted().GetBanId() == banID }, func() error {
			_, err := c.Bans.LiftBan(ctx, &pb.LiftBanRequest{BanId: banID})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("LiftBan: %w", err)
		}
		rows[2].samples = append(rows[2].samples, d)
	}
	// Correctness: every mirror ends at the authority's revision, agreeing
	// on the ban count.
	for i, m := range mirrors {
		if m.Revision() != mirrors[0].Revision() {
			return nil, fmt.Errorf("mirror %d at revision %d, mirror 0 at %d", i, m.Revision(), mirrors[0].Revision())
		}
	}
	if len(rows[0].samples) == 0 {
		return nil, errors.New("no operations measured")
	}
	return rows, nil
}
