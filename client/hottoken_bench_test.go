package client_test

import (
	"context"
	"fmt"
	"hash/maphash"
	"net/netip"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/client"
)

// The benchmarks of this file measure a cached check against a floor: the
// work no check of a cached token can avoid, written in plain Go (hash the
// token's signature with maphash, look its user, device and session up in
// three 100k-entry Go maps, read the clock). The goals are ratios, each
// measured within one run so that they hold while the machine's load
// changes (BENCHMARKS.md, "Checks of one hot token"):
//   - a cached check costs at most 2.5x the floor;
//   - checks of one token from 2 goroutines give at least 1.6x the
//     throughput of 1 goroutine (the floor itself gives about 2x on an
//     idle 2-core machine).

// checkFloor is the floor's data: 100k entries per map, like the
// mirror's 100k bans and 10k revoked sessions. The maps are keyed by the
// hashes of the IDs, as the mirror's indexes are: a cached token carries
// the hashes of its user, device and session, so that a check hashes
// nothing but the token.
type checkFloor struct {
	seed                     maphash.Seed
	users, devices, sessions map[uint64]int64
	user, device, session    uint64
}

func newCheckFloor(user, session string) *checkFloor {
	const n = 100_000
	seed := maphash.MakeSeed()
	f := &checkFloor{
		seed:  seed,
		users: make(map[uint64]int64, n), devices: make(map[uint64]int64, n), sessions: make(map[uint64]int64, n),
		user: maphash.String(seed, user), device: maphash.String(seed, user+"-phone"), session: maphash.String(seed, session),
	}
	for i := range n {
		f.users[maphash.String(seed, fmt.Sprintf("user-%07d", i))] = int64(i)
		f.devices[maphash.String(seed, fmt.Sprintf("device-%07d", i))] = int64(i)
		f.sessions[maphash.String(seed, synthID("ses_", i))] = int64(i)
	}
	return f
}

// run is one floor "check" of tok; it reports whether something refuses
// it (never, for the benchmark's token), so that nothing is optimised
// away.
func (f *checkFloor) run(tok string) bool {
	h := maphash.String(f.seed, tok[len(tok)-32:])
	_, u := f.users[f.user]
	_, d := f.devices[f.device]
	until, s := f.sessions[f.session]
	now := time.Now().UnixNano()
	return u || d || (s && now < until) || h == 0
}

// hotToken is the setup shared by the benchmarks of this file: the mirror
// of BenchmarkCheckCached (100k bans, 10k revoked sessions), its token,
// an IPv4 client, and the floor.
type hotToken struct {
	m     *client.Mirror
	tok   string
	in    client.CheckInput
	floor *checkFloor
}

func newHotToken(b *testing.B) *hotToken {
	tok := benchToken(b, "alice")
	h := &hotToken{
		m:     benchMirror(b, synthSnapshot(100_000, 10_000), 0),
		tok:   tok,
		in:    client.CheckInput{ClientIP: netip.MustParseAddr("192.0.2.10"), Capability: "post"},
		floor: newCheckFloor("alice", synthID("ses_", 1<<30)),
	}
	if _, err := h.m.Check(context.Background(), tok, h.in); err != nil {
		b.Fatal(err)
	}
	if h.floor.run(tok) {
		b.Fatal("the floor refuses the token")
	}
	runtime.GC() // not the setup's garbage in the timing
	return h
}

// checks runs n cached checks; it reports the first error.
func (h *hotToken) checks(n int) error {
	ctx := context.Background()
	for range n {
		if _, err := h.m.Check(ctx, h.tok, h.in); err != nil {
			return err
		}
	}
	return nil
}

// floors runs the floor n times.
func (h *hotToken) floors(n int) error {
	for range n {
		if h.floor.run(h.tok) {
			return fmt.Errorf("the floor refuses the token")
		}
	}
	return nil
}

// BenchmarkCheckFloor: the floor alone, and from every goroutine of
// RunParallel (-cpu 1,2: its scaling is what the machine gives).
func BenchmarkCheckFloor(b *testing.B) {
	h := newHotToken(b)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if h.floor.run(h.tok) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if h.floor.run(h.tok) {
					b.Error("refused")
					return
				}
			}
		})
	})
}

// roundOps is how many checks (or floors) a timed round runs: about 10 µs,
// short enough that most rounds are not preempted on a busy machine (the
// medians below then ignore the ones that are), long enough that reading
// the clock around it costs under 1%.
const roundOps = 100

// BenchmarkCheckCachedVsFloor alternates rounds of cached checks and of
// the floor, one goroutine, and reports the median of the rounds' time
// per check (ns/check), per floor (ns/floor) and of their ratio
// (x-floor). Goal: x-floor <= 2.5.
func BenchmarkCheckCachedVsFloor(b *testing.B) {
	h := newHotToken(b)
	var checkNs, floorNs, ratio []float64
	for b.Loop() {
		t0 := time.Now()
		if err := h.checks(roundOps); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := h.floors(roundOps); err != nil {
			b.Fatal(err)
		}
		c, f := float64(t1.Sub(t0))/roundOps, float64(time.Since(t1))/roundOps
		checkNs, floorNs, ratio = append(checkNs, c), append(floorNs, f), append(ratio, c/f)
	}
	b.ReportMetric(median(checkNs), "ns/check")
	b.ReportMetric(median(floorNs), "ns/floor")
	b.ReportMetric(median(ratio), "x-floor")
}

// BenchmarkCheckHotToken measures how checks of one token scale from one
// goroutine to two, against the floor's scaling in the same run. Each
// round times hotOps checks on the benchmark's goroutine alone (solo),
// then hotOps on it and hotOps on a second goroutine at once (duo: from
// the first start to the last end); then the same for the floor. The
// second goroutine spins, waiting for its part, through the solo phases
// too, so that both phases run the same goroutines.
//
// On a machine shared with other work, the two goroutines often do not
// run at the same time (one waits for a core): such a duo phase measures
// the machine, not the check. A round counts only when both goroutines'
// parts overlapped for 90% of the phase, for the check and for the floor.
// An iteration of the benchmark runs rounds until one counts (at most
// hotTries). It reports the medians over the rounds that count of
// 2*solo/duo, the throughput of two goroutines over one's: x-scale-check
// (goal >= 1.6) and x-scale-floor (what the machine gives: about 2 when
// two cores are free), and the share of rounds that counted (kept-%).
// It needs GOMAXPROCS >= 2 (two goroutines running at once).
func BenchmarkCheckHotToken(b *testing.B) {
	if runtime.GOMAXPROCS(0) < 2 {
		b.Skip("needs GOMAXPROCS >= 2")
	}
	h := newHotToken(b)
	// The second goroutine runs cmd's fn once per new gen (a nil fn: it
	// returns), records when it started and ended, then stores gen in
	// done.
	type command struct {
		gen int64
		fn  func(int) error
	}
	var cmd atomic.Pointer[command]
	var done, start, end atomic.Int64
	var failed atomic.Pointer[error]
	go func() {
		var last int64
		for {
			c := cmd.Load()
			if c == nil || c.gen == last {
				continue // spin: a phase starts the moment main says so
			}
			last = c.gen
			if c.fn == nil {
				return
			}
			start.Store(time.Now().UnixNano())
			if err := c.fn(hotOps); err != nil {
				failed.Store(&err)
			}
			end.Store(time.Now().UnixNano())
			done.Store(c.gen)
		}
	}()
	var gen int64
	defer func() { cmd.Store(&command{gen: gen + 1}) }()
	// phase returns the phase's wall time, and whether the two
	// goroutines overlapped (always, solo).
	phase := func(fn func(int) error, duo bool) (float64, bool) {
		if duo {
			gen++
			cmd.Store(&command{gen: gen, fn: fn})
		}
		t0 := time.Now().UnixNano()
		if err := fn(hotOps); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now().UnixNano()
		if !duo {
			return float64(t1 - t0), true
		}
		for done.Load() != gen {
		}
		if p := failed.Load(); p != nil {
			b.Fatal(*p)
		}
		s, e := start.Load(), end.Load()
		wall, overlap := max(t1, e)-min(t0, s), min(t1, e)-max(t0, s)
		return float64(wall), overlap*10 >= wall*9
	}
	var check, floor []float64
	rounds := 0
	for b.Loop() {
		// Up to hotTries rounds, until one counts.
		for range hotTries {
			rounds++
			cSolo, _ := phase(h.checks, false)
			cDuo, cOK := phase(h.checks, true)
			fSolo, _ := phase(h.floors, false)
			fDuo, fOK := phase(h.floors, true)
			if cOK && fOK {
				check, floor = append(check, 2*cSolo/cDuo), append(floor, 2*fSolo/fDuo)
				break
			}
		}
	}
	b.ReportMetric(median(check), "x-scale-check")
	b.ReportMetric(median(floor), "x-scale-floor")
	b.ReportMetric(100*float64(len(check))/float64(rounds), "kept-%")
}

// hotOps is how many checks a phase of BenchmarkCheckHotToken runs on
// each goroutine (about 50 µs); an iteration of it tries up to hotTries
// rounds, so that a busy machine still gives rounds that count.
const (
	hotOps   = 500
	hotTries = 20
)

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
