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
	"github.com/portcullis-dev/portcullis/internal/storage"
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
	coldStartBans         int
	coldStartProfile      string

	procs            int    // child processes for the enforcement mirrors (0: in-process)
	runs             int    // repetitions of each row
	interceptorCalls int    // calls per variant of the interceptor row (0 skips it)
	store            string // bolt, etcd (embedded) or etcd://host:port[,...]
	remote           string // -authority: an authority already running (no store of ours)
	remoteKey        string
	sustained        sustainedLoad
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
	procs   int // child processes the mirrors ran in (0: this process)
	samples []time.Duration
	synced  time.Duration // start of the mirrors until all had their first snapshot
	elapsed time.Duration // a sustained row: first ban issued until the last was applied everywhere
}

type throughputRow struct {
	op      string
	callers int
	ops     int64
	elapsed time.Duration
}

// results holds every run of every row, in the order they ran.
type results struct {
	latency     []latencyRow
	throughput  []throughputRow
	interceptor []interceptorRow
	memory      []memoryRow
	fanout      []fanoutRow
	coldStart   []coldStartRow
}

// authorityEnv is the authority under test: started by the harness, or
// (-authority) one running elsewhere, of which it knows only the address
// and an admin key (srv is nil).
type authorityEnv struct {
	closeStore func()
	srv        *server.Server
	g          *grpc.Server
	addr       string
	key        string
}

func startAuthority(store, dir string) (*authorityEnv, error) {
	log := benchLogger()
	st, closeStore, err := openStore(store, dir, log)
	if err != nil {
		return nil, err
	}
	return serveAuthority(st, closeStore, log)
}

func benchLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// serveAuthority starts an authority and its gRPC server on st, an open
// store; close stops them and calls closeStore.
func serveAuthority(st storage.Store, closeStore func(), log *slog.Logger) (*authorityEnv, error) {
	auth := authority.New(st, authority.Config{Logger: log})
	ctx := context.Background()
	if err := auth.EnsureSigningKey(ctx); err != nil {
		closeStore()
		return nil, err
	}
	key, err := auth.EnsureBootstrapKey(ctx)
	if err != nil {
		closeStore()
		return nil, err
	}
	// The harness is one API key on one address: the abuse limits are off.
	srv := server.New(auth, server.Options{Logger: log, CheckpointInterval: time.Second, Limits: server.Limits{
		RefreshPerSecond: -1, CreateSessionPerSecond: -1, MaxWatchersPerKey: -1,
		FailedAuthPerSecond: -1,
	}})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		closeStore()
		return nil, err
	}
	g := srv.NewGRPCServer()
	go g.Serve(lis)
	return &authorityEnv{closeStore: closeStore, srv: srv, g: g, addr: lis.Addr().String(), key: key}, nil
}

func (a *authorityEnv) close() {
	if a.srv == nil {
		return // not ours
	}
	a.srv.Shutdown()
	a.g.Stop()
	a.closeStore()
}

func (a *authorityEnv) dial(opts ...client.Option) (*client.Client, error) {
	return client.Dial(a.addr, append([]client.Option{client.WithAPIKey(a.key), client.WithInsecure()}, opts...)...)
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
	runs := max(1, cfg.runs)
	where := "mirrors in-process (one connection each)"
	if cfg.procs > 0 {
		where = fmt.Sprintf("enforcement mirrors in -procs %d child processes (one connection each)", cfg.procs)
	}
	fmt.Fprintf(out, "# portcullis bench\n")
	fmt.Fprintf(out, "machine: %d cores (GOMAXPROCS %d), %s %s/%s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(out, "flags: %s\n", strings.Join(cfg.args, " "))
	if cfg.remote != "" {
		fmt.Fprintf(out, "authority: running at %s (-authority), plaintext gRPC, %s\n", cfg.remote, where)
	} else {
		fmt.Fprintf(out, "authority: %s, gRPC on loopback TCP, %s\n", storeFlag(cfg.store, dir), where)
	}
	if runs > 1 {
		fmt.Fprintf(out, "runs: %d of each row; the tables give medians (see each table) and each run in order\n", runs)
	}
	fmt.Fprintln(out)

	a := &authorityEnv{addr: cfg.remote, key: cfg.remoteKey}
	if cfg.remote == "" {
		var err error
		if a, err = startAuthority(cfg.store, dir); err != nil {
			return nil, err
		}
	}
	defer a.close()
	res := &results{}

	// Durable write throughput first, with no mirror attached.
	if len(cfg.callers) > 0 {
		h, rule := runsHeader(runs, "writes/s")
		fmt.Fprintf(out, "| durable writes | callers | ops | writes/s |%s\n| --- | ---: | ---: | ---: |%s\n", h, rule)
		for _, op := range []string{"CreateBan", "CreateSession", "RefreshSession"} {
			for _, n := range cfg.callers {
				var rows []throughputRow
				for range runs {
					row, err := throughput(a, op, n, cfg.duration)
					if err != nil {
						return nil, err
					}
					rows = append(rows, row)
				}
				res.throughput = append(res.throughput, rows...)
				m := medianRun(rows, throughputRow.rate)
				each := eachRun(rows, func(r throughputRow) string { return fmt.Sprintf("%.0f", r.rate()) })
				fmt.Fprintf(out, "| %s | %d | %d | %.0f |%s\n", op, n, m.ops, m.rate(), runsCell(each))
			}
		}
		fmt.Fprintln(out)
	}

	if len(cfg.mirrors) > 0 {
		stat := ""
		if runs > 1 {
			stat = "; medians over runs of each statistic"
		}
		h, rule := runsHeader(runs, "p50")
		fmt.Fprintf(out, "| enforcement (ack -> every mirror applied; progress reports %v%s) | mirrors | ops | p50 | p99 | max |%s\n| --- | ---: | ---: | ---: | ---: | ---: |%s\n",
			map[bool]string{true: "on", false: "off"}[cfg.progress], stat, h, rule)
		for _, n := range cfg.mirrors {
			var byOp [][]latencyRow
			var synced []time.Duration
			for range runs {
				rows, err := enforcement(a, n, cfg.ops, cfg.progress, cfg.procs, cfg.sustained)
				if err != nil {
					return nil, fmt.Errorf("%d mirrors: %w", n, err)
				}
				res.latency = append(res.latency, rows...)
				byOp = slices.Grow(byOp, len(rows))[:len(rows)]
				for i, r := range rows {
					byOp[i] = append(byOp[i], r)
				}
				synced = append(synced, rows[0].synced.Round(time.Millisecond))
			}
			for _, rows := range byOp {
				var p50, p99, top []time.Duration
				for _, r := range rows {
					s := slices.Clone(r.samples)
					slices.Sort(s)
					p50, p99, top = append(p50, pct(s, 50)), append(p99, pct(s, 99)), append(top, s[len(s)-1])
				}
				each := eachRun(p50, time.Duration.String)
				fmt.Fprintf(out, "| %s | %d | %d | %v | %v | %v |%s\n", rows[0].op, n, len(rows[0].samples), median(p50), median(p99), median(top), runsCell(each))
				if rows[0].elapsed > 0 {
					achieved := make([]string, len(rows))
					for i, r := range rows {
						achieved[i] = fmt.Sprintf("%.0f", float64(len(r.samples))/r.elapsed.Seconds())
					}
					fmt.Fprintf(out, "(sustained: bans issued and applied by every mirror per second, each run: %s)\n", strings.Join(achieved, " / "))
				}
			}
			in := ""
			if cfg.procs > 0 {
				in = fmt.Sprintf(" in %d child processes", min(cfg.procs, n))
			}
			fmt.Fprintf(out, "(%d mirrors%s started and all had their first snapshot in %v)\n", n, in, joinDurations(synced))
		}
		fmt.Fprintln(out)
	}

	if cfg.interceptorCalls > 0 {
		rows, err := interceptorRows(a, cfg.interceptorCalls, runs)
		if err != nil {
			return nil, fmt.Errorf("interceptor: %w", err)
		}
		res.interceptor = rows
		printInterceptor(out, rows)
		fmt.Fprintln(out)
	}

	if cfg.memBans > 0 {
		var rows []memoryRow
		for r := range runs {
			row, err := mirrorMemory(cfg.store, filepath.Join(dir, fmt.Sprintf("memory-%d", r)), cfg.memBans, cfg.memRevoked, 64)
			if err != nil {
				return nil, fmt.Errorf("mirror memory: %w", err)
			}
			rows = append(rows, row)
		}
		res.memory = rows
		r := medianRun(rows, func(r memoryRow) float64 { return float64(r.heapAlloc) })
		n := max(1, r.bans+r.revoked)
		h, rule := runsHeader(runs, "heap alloc")
		fmt.Fprintf(out, "| mirror memory (one mirror, loaded through Watch) | bans | revoked sessions | heap in use | heap alloc | per entry (alloc) | per ban (alloc, all of it) |%s\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |%s\n", h, rule)
		each := eachRun(rows, func(r memoryRow) string { return fmt.Sprintf("%d B", r.heapAlloc) })
		fmt.Fprintf(out, "| after GC, with minus without the mirror | %d | %d | %d B | %d B | %d B | %d B |%s\n", r.bans, r.revoked, r.heapInuse, r.heapAlloc, r.heapAlloc/int64(n), r.heapAlloc/int64(max(1, r.bans)), runsCell(each))
		fmt.Fprintf(out, "(state written in %v with 64 callers; the mirror's first snapshot took %v%s)\n\n", r.load.Round(time.Millisecond), r.sync.Round(time.Millisecond), medianNote(runs))
	}
	if cfg.fanout > 0 {
		var rows []fanoutRow
		for r := range runs {
			row, err := fanout(cfg.store, filepath.Join(dir, fmt.Sprintf("fanout-%d", r)), cfg.fanout, cfg.fanoutWriters, cfg.fanoutDuration)
			if err != nil {
				return nil, fmt.Errorf("fan-out: %w", err)
			}
			rows = append(rows, row)
		}
		res.fanout = rows
		r := medianRun(rows, fanoutRow.deliveryRate)
		h, rule := runsHeader(runs, "delivered/s")
		fmt.Fprintf(out, "| Watch fan-out (raw Recv loops) | subscribers | writers | bans written | writes/s | events delivered | delivered/s (until drained) | drain after writes |%s\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |%s\n", h, rule)
		each := eachRun(rows, func(r fanoutRow) string { return fmt.Sprintf("%.0f", r.deliveryRate()) })
		fmt.Fprintf(out, "| CreateBan -> every subscriber | %d | %d | %d | %.0f | %d | %.0f | %v |%s\n", r.subscribers, r.writers, r.writes,
			float64(r.writes)/r.writing.Seconds(), r.delivered, r.deliveryRate(), (r.drained - r.writing).Round(time.Millisecond), runsCell(each))
		if runs > 1 {
			fmt.Fprintf(out, "(the run with the median delivered/s)\n")
		}
	}
	if cfg.coldStartBans > 0 {
		rows, err := runColdStart(cfg, dir, runs, out)
		if err != nil {
			return nil, err
		}
		res.coldStart = rows
	}
	return res, nil
}

func joinDurations(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = d.String()
	}
	return strings.Join(s, " / ")
}

// medianNote says which run a table's single row is, when there are several.
func medianNote(runs int) string {
	if runs < 2 {
		return ""
	}
	return "; the row is the run with the median heap alloc"
}

func (r throughputRow) rate() float64 { return float64(r.ops) / r.elapsed.Seconds() }

func (r fanoutRow) deliveryRate() float64 { return float64(r.delivered) / r.drained.Seconds() }

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
	ops, elapsed, err := closedLoop(callers, d, func(i, n int) error {
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
		return err
	})
	if err != nil {
		return throughputRow{}, fmt.Errorf("%s with %d callers: %w", op, callers, err)
	}
	return throughputRow{op: op, callers: callers, ops: ops, elapsed: elapsed}, nil
}

// closedLoop runs op(i, n) for its n-th time in a loop on each of callers
// goroutines (i), until d has passed, and returns how many ran, how long
// they took (until every caller's last call returned) and the first error
// (which ends that caller).
func closedLoop(callers int, d time.Duration, op func(i, n int) error) (int64, time.Duration, error) {
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
				if err := op(i, n); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				ops.Add(1)
			}
		}()
	}
	time.Sleep(d) // the load's duration, not a wait for a result
	close(stop)
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return ops.Load(), time.Since(start), *p
	}
	return ops.Load(), time.Since(start), nil
}

// enforcement measures, with n mirrors following the authority (in this
// process, or in procs child processes when procs > 0), how long after
// the acknowledgement of a CreateBan, a RevokeSession and a LiftBan every
// mirror has applied it (and so refuses, or accepts again, the user's
// token). Each operation runs alone.
//
// With a sustained load (sl.rate > 0) it then creates bans at that rate for
// sl.duration, each from its own goroutine at its scheduled time (an open
// loop: a slow ban does not delay the next), and adds a fourth row with
// the same measure for each of them.
func enforcement(a *authorityEnv, n, ops int, progress bool, procs int, sl sustainedLoad) ([]latencyRow, error) {
	ctx := context.Background()
	var targets sync.Map // eventKey -> *target: the changes being measured
	applied := func(mirror int, k eventKey, ns int64) {
		if t, ok := targets.Load(k); ok {
			t.(*target).applied(mirror, ns)
		}
	}
	var f *fleet
	var err error
	if procs > 0 {
		f, err = startChildren(a, n, procs, progress, applied)
	} else {
		f, err = startInProcess(a, n, progress, applied)
	}
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			f.abort()
		}
	}()
	c, err := a.dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()

	// measure runs call with a fresh target and returns ack -> all applied.
	measure := func(key eventKey, call func() error) (time.Duration, error) {
		t := newTarget(key, n)
		targets.Store(key, t)
		defer targets.Delete(key)
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
	rows := []latencyRow{{op: "CreateBan (user)"}, {op: "RevokeSession"}, {op: "LiftBan"}}
	for i := range rows {
		rows[i].mirrors, rows[i].procs, rows[i].synced = n, procs, f.synced
	}
	for i := range ops {
		user := fmt.Sprintf("el-%d-%d", n, i)
		sess, err := c.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{UserId: user + "-s"})
		if err != nil {
			return nil, err
		}
		var banID string
		d, err := measure(eventKey{"ban", user}, func() error {
			r, err := c.Bans.CreateBan(ctx, &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: user}}})
			banID = r.GetBan().GetBanId()
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("CreateBan: %w", err)
		}
		rows[0].samples = append(rows[0].samples, d)
		sid := sess.GetSession().GetSessionId()
		d, err = measure(eventKey{"revoke", sid}, func() error {
			_, err := c.Sessions.RevokeSession(ctx, &pb.RevokeSessionRequest{SessionId: sid})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("RevokeSession: %w", err)
		}
		rows[1].samples = append(rows[1].samples, d)
		d, err = measure(eventKey{"lift", banID}, func() error {
			_, err := c.Bans.LiftBan(ctx, &pb.LiftBanRequest{BanId: banID})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("LiftBan: %w", err)
		}
		rows[2].samples = append(rows[2].samples, d)
	}
	if sl.rate > 0 {
		row, err := sustained(ctx, c, n, sl, measure)
		if err != nil {
			return nil, err
		}
		row.procs, row.synced = procs, f.synced
		rows = append(rows, row)
	}
	// Correctness: every mirror ends at the same revision (the authority's:
	// nothing is written after the last measured change).
	stopped = true
	revs, err := f.stop()
	if err != nil {
		return nil, err
	}
	if len(revs) != n {
		return nil, fmt.Errorf("%d mirrors reported a final revision, want %d", len(revs), n)
	}
	for i, r := range revs {
		if r != revs[0] {
			return nil, fmt.Errorf("mirror %d at revision %d, mirror 0 at %d", i, r, revs[0])
		}
	}
	if len(rows[0].samples) == 0 {
		return nil, errors.New("no operations measured")
	}
	return rows, nil
}
