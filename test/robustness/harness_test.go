package robustness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/rpcerr"
)

// size is how big a run is: PORTCULLIS_ROBUSTNESS=long for `make
// robustness` (about ten minutes for both backends), small otherwise
// (`make test`).
type size struct {
	name        string
	load        time.Duration // how long the load and the faults run
	workers     int
	activeUsers int
	minGap      time.Duration // between faults
	maxGap      time.Duration
	resumes     int // fresh streams checked by CheckResume
}

func runSize(t *testing.T) size {
	switch v := os.Getenv("PORTCULLIS_ROBUSTNESS"); v {
	case "", "small":
		return size{name: "small", load: 8 * time.Second, workers: 8, activeUsers: 6,
			minGap: 500 * time.Millisecond, maxGap: 2 * time.Second, resumes: 8}
	case "long":
		return size{name: "long", load: 4 * time.Minute, workers: 16, activeUsers: 24,
			minGap: time.Second, maxGap: 6 * time.Second, resumes: 64}
	default:
		t.Fatalf("PORTCULLIS_ROBUSTNESS=%q: want small or long", v)
		return size{}
	}
}

func runSeed(t *testing.T) uint64 {
	v := os.Getenv("PORTCULLIS_ROBUSTNESS_SEED")
	if v == "" {
		return uint64(time.Now().UnixNano() & (1<<62 - 1))
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatalf("PORTCULLIS_ROBUSTNESS_SEED=%q: %v", v, err)
	}
	return n
}

// cluster is a system under test: one bbolt authority, or replicas over
// etcd.
type cluster interface {
	// loadClients are the clients of the load (each may fail over).
	loadClients() []*client.Client
	// watchClients are one client per authority replica, for a mirror
	// and a raw Watch subscriber each.
	watchClients() []*client.Client
	// inject injects one fault chosen with rng, undoes it (restarts what
	// it killed, heals what it cut) and returns its kind.
	inject(t *testing.T, rng *rand.Rand) string
	// contiguous: revisions are consecutive (bbolt).
	contiguous() bool
	// retained reports whether the changes after rev are surely retained
	// by every replica, given the head revision.
	retained(rev, head int64) bool
	// finish checks the stores' consistency once the run is over.
	finish(t *testing.T)
}

// rounds deals fault kinds in shuffled rounds: every kind once per round,
// in random order.
type rounds struct {
	kinds []string
	left  []string
}

func (r *rounds) next(rng *rand.Rand) string {
	if len(r.left) == 0 {
		r.left = slices.Clone(r.kinds)
		rng.Shuffle(len(r.left), func(i, j int) { r.left[i], r.left[j] = r.left[j], r.left[i] })
	}
	k := r.left[0]
	r.left = r.left[1:]
	return k
}

// bigSessions is how many sessions the big user has: more than an etcd
// transaction at the default --max-txn-ops (128) may write.
const bigSessions = 250

// waitCond polls cond until it holds, failing the test after guard: a
// hang guard, far beyond what a busy machine needs.
func waitCond(t *testing.T, guard time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after %v", what, guard)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// robustness runs the load and the faults against cl and checks
// everything; it returns the report.
func robustness(t *testing.T, name string, cl cluster, sz size, seed uint64) Report {
	t.Logf("%s: size %s, seed %d (PORTCULLIS_ROBUSTNESS, PORTCULLIS_ROBUSTNESS_SEED)", name, sz.name, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	hist := NewHistory()
	ld := newLoad(hist, cl.loadClients(), seed, sz.activeUsers)

	// Subscribers: a mirror and a raw Watch subscriber on every replica.
	wctx, wcancel := context.WithCancel(context.Background())
	var wwg sync.WaitGroup
	defer func() { wcancel(); wwg.Wait() }()
	var raws []*rawWatcher
	var mirrors []*mirrorLog
	for i, c := range cl.watchClients() {
		w := &rawWatcher{name: fmt.Sprintf("watch-%d", i), c: c}
		raws = append(raws, w)
		wwg.Add(1)
		go func() { defer wwg.Done(); w.run(wctx) }()
		mirrors = append(mirrors, startMirror(wctx, fmt.Sprintf("mirror-%d", i), c, &wwg))
	}
	for _, m := range mirrors {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		err := m.m.WaitSynced(ctx)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
	}

	// A user with more sessions than one etcd transaction may revoke, whose
	// ban, made during the faults, is split into the documented batches.
	bctx, bcancel := context.WithTimeout(context.Background(), 10*time.Minute) // hang guard
	big := ld.bigUser(bctx, bigSessions)
	bcancel()

	// The load, and the faults at random moments during it.
	lctx, lcancel := context.WithCancel(context.Background())
	var lwg sync.WaitGroup
	for w := range sz.workers {
		lwg.Add(1)
		go func() { defer lwg.Done(); ld.run(lctx, w) }()
	}
	var faults Faults
	end := time.Now().Add(sz.load)
	for time.Now().Before(end) {
		gap := sz.minGap + time.Duration(rng.Int64N(int64(sz.maxGap-sz.minGap)))
		time.Sleep(gap) // the fault schedule, not a wait for a condition
		faults.Add(cl.inject(t, rng))
		if big != nil {
			lwg.Add(1)
			go func(u *userLoad) { defer lwg.Done(); ld.banBig(lctx, u) }(big)
			big = nil
		}
	}
	// Everything is back: the load must make progress again before it
	// stops, on every kind of operation the load sends.
	acked := func() int {
		n := 0
		for _, op := range hist.Ops() {
			if op.Out.Result != Unknown {
				n++
			}
		}
		return n
	}
	target := acked() + 4*sz.workers
	waitCond(t, 5*time.Minute, "operations answered after the last fault", func() bool { return acked() >= target })
	lcancel()
	lwg.Wait()

	c := cl.loadClients()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // hang guard
	defer cancel()
	ld.finalReads(ctx, c, sz.workers)
	for _, err := range ld.unexpected {
		t.Errorf("unexpected error: %v", err)
	}

	// Every subscriber reaches the head, then stops.
	rr, err := c.Events.GetRevision(ctx, &pb.GetRevisionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	head, store := rr.GetRevision(), rr.GetStoreId()
	for _, w := range raws {
		waitCond(t, 5*time.Minute, w.name+" to reach the head", func() bool { _, r := w.position(); return r >= head })
	}
	for _, m := range mirrors {
		waitCond(t, 5*time.Minute, m.name+" to reach the head", func() bool { return m.m.Revision() >= head })
	}

	final := readFinal(ctx, t, c, ld)
	ops := hist.Ops()
	resolved := Resolve(ops, final.Made())
	lin := CheckLinearizable(resolved, 5*time.Minute)
	if lin.Result != "Ok" {
		t.Errorf("linearizability: %s", lin.Result)
		for u, lines := range Illegal(resolved, time.Minute, 3) {
			t.Errorf("user %s is not linearizable:\n  %s", u, strings.Join(lines, "\n  "))
		}
	}
	lost := LostWrites(ops, final)
	for _, l := range lost {
		t.Errorf("lost: %s", l)
	}

	// The watch guarantees, over every subscriber's log, then fresh
	// resumes from revisions the reference holds.
	var logs []WatchLog
	for _, w := range raws {
		logs = append(logs, w.Log())
	}
	for _, m := range mirrors {
		logs = append(logs, m.Log())
	}
	ref := NewReference(logs)
	vs := CheckWatch(ref, logs, cl.contiguous())
	revs := ref.Revisions(store)
	resumes := 0
	wcs := cl.watchClients()
	for i := range sz.resumes {
		var after int64
		switch {
		case len(revs) == 0:
		case i == 0:
			after = revs[0] - 1 // the oldest: outside retention on a long bbolt run
		case i%2 == 1:
			// Near the head, surely retained: the resume must be exact.
			after = revs[len(revs)-1-rng.IntN(min(len(revs), 500))]
		default:
			after = revs[rng.IntN(len(revs))]
		}
		wc := wcs[i%len(wcs)]
		msgs, err := readResume(ctx, wc, store, after)
		if err != nil {
			t.Fatalf("resume after %d: %v", after, err)
		}
		vs = append(vs, CheckResume(ref, fmt.Sprintf("resume-%d", i), store, after, cl.retained(after, head), msgs)...)
		resumes++
	}
	vs = append(vs, converged(ctx, t, mirrors, final, ld)...)
	for _, v := range vs {
		t.Errorf("watch: %v", v)
	}
	wcancel()
	wwg.Wait()
	cl.finish(t)

	r := Report{Name: name + " (" + sz.name + ")", Ops: ops, Faults: faults.Counts(), Lost: lost, Linearizability: lin,
		Changes: ref.Changes(), Logs: len(logs), Resumes: resumes, Violations: vs}
	t.Log("\n" + r.String())
	// go test shows a passing package's log only with -v: make test names
	// a file here to print the report after the run.
	if p := os.Getenv("PORTCULLIS_ROBUSTNESS_REPORT"); p != "" {
		f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			_, err = f.WriteString(r.String())
			err = errors.Join(err, f.Close())
		}
		if err != nil {
			t.Errorf("report file: %v", err)
		}
	}
	return r
}

// readFinal reads the store's final state through the public API: every
// ban (any state) and every session of the load's users.
func readFinal(ctx context.Context, t *testing.T, c *client.Client, ld *load) Final {
	t.Helper()
	f := Final{Bans: map[string]FinalBan{}, Sessions: map[string]FinalSession{}}
	req := &pb.ListBansRequest{PageSize: 1000}
	for {
		resp, err := c.Bans.ListBans(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range resp.GetBans() {
			f.Bans[b.GetBanId()] = FinalBan{
				User: b.GetSubject().GetUserId(), Tag: strings.TrimPrefix(b.GetReason(), "robustness "),
				Lifted: b.GetState() == pb.BanState_BAN_STATE_LIFTED,
			}
		}
		if resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	for _, u := range ld.allUsers() {
		req := &pb.ListSessionsRequest{TenantId: "public", UserId: u.name, IncludeInactive: true, PageSize: 1000}
		for {
			resp, err := c.Sessions.ListSessions(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range resp.GetSessions() {
				f.Sessions[s.GetSessionId()] = FinalSession{User: s.GetUserId(), Revoked: s.GetRevokeTime() != nil}
			}
			if resp.GetNextPageToken() == "" {
				break
			}
			req.PageToken = resp.GetNextPageToken()
		}
	}
	return f
}

// converged checks that every mirror holds what the authority holds: as
// many active bans and revoked sessions, and the same answer as
// VerifySession for every session's latest access token.
func converged(ctx context.Context, t *testing.T, mirrors []*mirrorLog, f Final, ld *load) []Violation {
	t.Helper()
	active, revoked := 0, 0
	for _, b := range f.Bans {
		if !b.Lifted {
			active++
		}
	}
	for _, s := range f.Sessions {
		if s.Revoked {
			revoked++
		}
	}
	var vs []Violation
	c := ld.clients[0]
	for _, m := range mirrors {
		st := m.m.Stats()
		if st.Bans != active || st.Revoked != revoked {
			vs = append(vs, Violation{"converged", m.name, fmt.Sprintf("holds %d bans and %d revoked sessions, the authority %d and %d", st.Bans, st.Revoked, active, revoked)})
		}
	}
	for _, u := range ld.allUsers() {
		u.mu.Lock()
		sessions := slices.Clone(u.sessions)
		u.mu.Unlock()
		for _, s := range sessions {
			_, err := c.Sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: s.access})
			want := verdict(err)
			for _, m := range mirrors {
				_, err := m.m.Check(ctx, s.access, client.CheckInput{})
				if got := verdict(err); got != want {
					vs = append(vs, Violation{"converged", m.name, fmt.Sprintf("session %s of %s: the mirror says %s, VerifySession %s", s.id, u.name, got, want)})
				}
			}
		}
	}
	return vs
}

func verdict(err error) string {
	switch {
	case err == nil:
		return "allowed"
	case errors.Is(err, rpcerr.ErrUserBanned):
		return "banned"
	case errors.Is(err, rpcerr.ErrSessionRevoked):
		return "revoked"
	}
	return err.Error()
}
