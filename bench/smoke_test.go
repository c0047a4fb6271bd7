package main

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestMain lets the test binary serve as a -procs child: startChildren
// re-executes os.Executable(), which under go test is this binary.
func TestMain(m *testing.M) {
	if isChild() {
		os.Exit(childMain())
	}
	os.Exit(m.Run())
}

// TestSmoke runs the harness's main logic in its small configuration and
// checks correctness only (every mirror applied every change; every
// throughput row did work without an error; the interceptor really
// checked), never timings.
func TestSmoke(t *testing.T) {
	cfg, res, out := smokeRun(t)
	if len(res.latency) != 4 {
		t.Fatalf("%d latency rows, want 3 one at a time and 1 sustained", len(res.latency))
	}
	for i, r := range res.latency {
		want := cfg.ops
		if i == 3 { // the sustained row: rate x duration bans
			want = int(float64(cfg.sustained.rate) * cfg.sustained.duration.Seconds())
		}
		if r.mirrors != 2 || r.procs != 0 || len(r.samples) != want {
			t.Errorf("%s: %d mirrors in %d processes, %d samples; want 2 in-process and %d", r.op, r.mirrors, r.procs, len(r.samples), want)
		}
	}
	if len(res.throughput) != 3*len(cfg.callers) {
		t.Fatalf("%d throughput rows", len(res.throughput))
	}
	for _, r := range res.throughput {
		if r.ops == 0 {
			t.Errorf("%s with %d callers: no operation completed", r.op, r.callers)
		}
	}
	// The interceptor row refuses to run unless the protected service
	// admitted a valid token and refused a banned user's (checks); here,
	// every first-seen call must have been a verification the mirror
	// cached: the cache (100,000 tokens) is far from full, so no insert
	// evicted another.
	if len(res.interceptor) != 1 {
		t.Fatalf("%d interceptor rows, want 1", len(res.interceptor))
	}
	if r := res.interceptor[0]; r.calls != cfg.interceptorCalls || r.cacheGrowth != r.calls {
		t.Errorf("interceptor row: %d calls, cache grew by %d during the first-seen calls; want %d and %d", r.calls, r.cacheGrowth, cfg.interceptorCalls, cfg.interceptorCalls)
	}
	if len(res.memory) != 1 || res.memory[0].bans != cfg.memBans || res.memory[0].revoked != cfg.memRevoked {
		t.Errorf("mirror memory rows: %+v; want one with %d bans, %d revoked", res.memory, cfg.memBans, cfg.memRevoked)
	}
	if len(res.fanout) != 1 {
		t.Fatalf("%d fan-out rows, want 1", len(res.fanout))
	}
	if f := res.fanout[0]; f.writes == 0 || f.delivered != f.writes*int64(f.subscribers) || f.cut != 0 {
		t.Errorf("fan-out row: %+v; want every write delivered to every subscriber once", f)
	}
	for _, want := range []string{"machine:", "flags: -smoke", "GOMAXPROCS", "mirrors in-process", "interceptor, first-seen token"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestSmokeProcs runs the enforcement rows twice (-runs 2) with their two
// mirrors in two child processes: every row completes only when each
// mirror of each child reported applying the ban, the revocation and the
// lift, and the children end, at stdin's close, at one revision.
func TestSmokeProcs(t *testing.T) {
	_, res, out := smokeRun(t, "-procs", "2", "-runs", "2", "-ops", "3", "-sustained-rate", "0",
		"-callers", "", "-mem-bans", "0", "-fanout", "0", "-interceptor-calls", "0")
	if len(res.latency) != 6 {
		t.Fatalf("%d latency rows, want 3 operations x 2 runs", len(res.latency))
	}
	for _, r := range res.latency {
		if r.mirrors != 2 || r.procs != 2 || len(r.samples) != 3 {
			t.Errorf("%s: %d mirrors in %d processes, %d samples; want 2 in 2 and 3", r.op, r.mirrors, r.procs, len(r.samples))
		}
	}
	if len(res.throughput)+len(res.interceptor)+len(res.memory)+len(res.fanout) != 0 {
		t.Errorf("rows that were switched off ran: %+v", res)
	}
	for _, want := range []string{"-procs 2 child processes", "each run (p50)", "2 mirrors in 2 child processes"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestSmokeEtcd runs the write and enforcement rows against an embedded
// etcd: every mirror applies every change, whatever the store.
func TestSmokeEtcd(t *testing.T) {
	_, res, out := smokeRun(t, "-store", "etcd", "-mem-bans", "0", "-fanout", "0", "-interceptor-calls", "0")
	if len(res.latency) != 4 || len(res.throughput) == 0 {
		t.Fatalf("%d latency and %d throughput rows, want 4 and some", len(res.latency), len(res.throughput))
	}
	for _, r := range res.throughput {
		if r.ops == 0 {
			t.Errorf("%s with %d callers wrote nothing", r.op, r.callers)
		}
	}
	if !strings.Contains(out, "authority: etcd (embedded") {
		t.Errorf("the header does not name the store:\n%s", out)
	}
	if _, err := parseFlags([]string{"-store", "mysql"}); err == nil {
		t.Error("-store mysql accepted")
	}
}

func TestSplit(t *testing.T) {
	for _, c := range []struct {
		n, procs int
		want     []int
	}{{1000, 4, []int{250, 250, 250, 250}}, {5, 2, []int{3, 2}}, {7, 3, []int{3, 2, 2}}, {1, 4, []int{1}}} {
		if got := split(c.n, c.procs); !slices.Equal(got, c.want) {
			t.Errorf("split(%d, %d) = %v, want %v", c.n, c.procs, got, c.want)
		}
	}
}

func TestMedian(t *testing.T) {
	if m := median([]int{5, 1, 3}); m != 3 {
		t.Errorf("median of 5,1,3 = %d", m)
	}
	if m := median([]int{4, 1, 3, 2}); m != 2 {
		t.Errorf("median of 4,1,3,2 = %d, want the lower middle 2", m)
	}
	rows := []throughputRow{{ops: 30, elapsed: 1e9}, {ops: 10, elapsed: 1e9}, {ops: 20, elapsed: 1e9}}
	if r := medianRun(rows, throughputRow.rate); r.ops != 20 {
		t.Errorf("median run has %d ops, want 20", r.ops)
	}
}

// smokeRun runs the harness with -smoke and extra flags, in a temporary
// directory, and logs its output.
func smokeRun(t *testing.T, flags ...string) (config, *results, string) {
	t.Helper()
	cfg, err := parseFlags(append([]string{"-smoke", "-dir", t.TempDir()}, flags...))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := run(cfg, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	return cfg, res, out.String()
}

// TestSmokeRemote measures an authority the harness did not start
// (-authority): here one started for the test, as `portcullis serve`
// would run elsewhere. The rows that need an authority of their own are
// off; the others work as with the harness's own.
func TestSmokeRemote(t *testing.T) {
	a, err := startAuthority("bolt", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	_, res, out := smokeRun(t, "-authority", a.addr, "-api-key", a.key)
	if len(res.latency) != 4 || len(res.throughput) == 0 || len(res.interceptor) == 0 {
		t.Fatalf("%d latency, %d throughput, %d interceptor rows; want 4 and some", len(res.latency), len(res.throughput), len(res.interceptor))
	}
	if len(res.memory)+len(res.fanout) != 0 {
		t.Errorf("the memory or fan-out row ran against -authority")
	}
	if !strings.Contains(out, "authority: running at "+a.addr) {
		t.Errorf("the header does not name the authority:\n%s", out)
	}
	for _, bad := range [][]string{{"-authority", a.addr}, {"-authority", a.addr, "-api-key", "k", "-fanout", "10"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

// TestSmokeColdStart runs the cold-start row twice on bolt (a second
// authority on the same store, with the API key the first created) and
// once on etcd (whose transactions take far fewer bans than the row's
// first batch): each run's mirror holds every seeded ban, from one stream.
func TestSmokeColdStart(t *testing.T) {
	for _, c := range []struct {
		store      string
		bans, runs int
	}{{"bolt", 3000, 2}, {"etcd", 300, 1}} {
		t.Run(c.store, func(t *testing.T) {
			_, res, out := smokeRun(t, "-store", c.store, "-coldstart-bans", strconv.Itoa(c.bans), "-runs", strconv.Itoa(c.runs),
				"-mirrors", "", "-callers", "", "-mem-bans", "0", "-fanout", "0", "-interceptor-calls", "0", "-sustained-rate", "0")
			if len(res.coldStart) != c.runs {
				t.Fatalf("%d cold-start runs, want %d", len(res.coldStart), c.runs)
			}
			for i, r := range res.coldStart {
				if r.bans != c.bans || r.connects != 1 || r.parts < 1 || r.synced < r.lastPart || r.lastPart < r.firstPart {
					t.Errorf("run %d: %+v; want %d bans from one stream, first part <= last part <= synced", i, r, c.bans)
				}
			}
			if !strings.Contains(out, "| cold start (one mirror, a fresh authority) |") {
				t.Errorf("output lacks the cold-start table")
			}
		})
	}
}
