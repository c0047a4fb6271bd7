package server_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd/etcdtest"
	"github.com/portcullis-dev/portcullis/server"
)

// mirrorOn starts a mirror following r with the key secret, waits until it
// is synced and returns it with the function that stops it.
func mirrorOn(t testing.TB, r *replica, secret, instance string, clock func() time.Time, opts client.MirrorOptions, dial ...client.Option) (*client.Mirror, func()) {
	t.Helper()
	c, err := client.Dial("passthrough:///bufnet", append([]client.Option{client.WithInsecure(), client.WithAPIKey(secret),
		client.WithDialOptions(grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return r.lis.DialContext(ctx) }))}, dial...)...)
	if err != nil {
		t.Fatal(err)
	}
	opts.Clock = clock
	opts.Identity = client.MirrorIdentity{Service: "fleetwait-test", InstanceID: instance, Version: "v0.0.1"}
	m := client.NewMirror(c, opts)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		m.Run(ctx)
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-ran; c.Close() }) }
	t.Cleanup(stop)
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	if err := m.WaitSynced(wctx); err != nil {
		t.Fatalf("mirror %s not synced: %v", instance, err)
	}
	return m, stop
}

// hold blocks a mirror's changes (not checkpoints) while closed.
type hold struct {
	mu sync.Mutex
	ch chan struct{} // nil: open
}

func (h *hold) close() { h.mu.Lock(); h.ch = make(chan struct{}); h.mu.Unlock() }

func (h *hold) open() {
	h.mu.Lock()
	if h.ch != nil {
		close(h.ch)
		h.ch = nil
	}
	h.mu.Unlock()
}

func (h *hold) beforeApply(resp *pb.WatchResponse) {
	if resp.GetChange() == nil {
		return
	}
	h.mu.Lock()
	ch := h.ch
	h.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// awaitFleet waits until srv sees exactly the other replicas' mirror counts
// in want.
func awaitFleet(t testing.TB, srv *server.Server, want map[string]int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var last map[string]int
	err := server.AwaitFleet(ctx, srv, func(m map[string]int) bool {
		last = m
		if len(m) != len(want) {
			return false
		}
		counts := map[int]int{}
		for _, n := range m {
			counts[n]++
		}
		for _, n := range want {
			counts[n]--
		}
		for _, c := range counts {
			if c != 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("the view of the other replicas never matched %v: last %v", want, last)
	}
}

// TestWaitCountsEveryReplica: two replicas over one etcd, mirrors on both.
// A waited write on one replica waits for the mirrors of the other too;
// a paused mirror there holds the wait to its deadline and is counted
// there; a replica that stops is no longer waited for.
func TestWaitCountsEveryReplica(t *testing.T) {
	m := etcdtest.Start(t, etcdtest.Config{UnsafeNoFsync: true})
	clock := &testClock{now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	rs, admin := bootstrapReplicas(t, 2, clock.Now, m)
	r1, r2 := rs[0], rs[1]
	// serve wraps the store for metrics: the wrapper must keep Presence,
	// or a deployed fleet would silently wait per replica.
	if _, ok := server.NewMetrics().InstrumentStore(r1.store).(storage.Presence); !ok {
		t.Fatal("InstrumentStore hides storage.Presence")
	}

	var mirrors []*client.Mirror
	for i := range 3 {
		mm, _ := mirrorOn(t, r1, admin, fmt.Sprintf("r1-m%d", i), clock.Now, client.MirrorOptions{})
		mirrors = append(mirrors, mm)
	}
	var h hold
	var stopR2 []func()
	for i := range 2 {
		var dial []client.Option
		if i == 1 {
			dial = append(dial, authoritytest.BeforeWatchMessage(h.beforeApply))
		}
		mm, stop := mirrorOn(t, r2, admin, fmt.Sprintf("r2-m%d", i), clock.Now, client.MirrorOptions{}, dial...)
		mirrors = append(mirrors, mm)
		stopR2 = append(stopR2, stop)
	}
	t.Cleanup(h.open) // before the mirrors stop (cleanups run last first)
	awaitFleet(t, r1.srv, map[string]int{"r2": 2})

	ctx := as(admin)
	login := func(user string) string {
		resp, err := r1.sessions.CreateSession(ctx, &pb.CreateSessionRequest{UserId: user})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetAccessToken()
	}
	ban := func(user, wait string) *pb.Enforcement {
		req := userBan("", user)
		req.Wait = wait
		resp, err := r1.bans.CreateBan(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetEnforcement()
	}

	// Every mirror of both replicas confirms, and refuses the user at once.
	tok := login("mallory")
	e := ban("mallory", "20s")
	if e.GetConfirmed() != 5 || e.GetTotal() != 5 || len(e.GetReplicas()) != 1 || e.GetReplicaId() == "" {
		t.Fatalf("enforcement %v: want 5/5 over this replica and one other", e)
	}
	if p := e.GetReplicas()[0]; p.GetConfirmed() != 2 || p.GetTotal() != 2 || p.GetGone() || p.GetReplicaId() == e.GetReplicaId() {
		t.Fatalf("the other replica: %v, want 2/2", p)
	}
	for i, mm := range mirrors {
		if _, err := mm.Check(context.Background(), tok, client.CheckInput{}); !errors.Is(err, client.ErrUserBanned) {
			t.Errorf("mirror %d after the waited ban: %v, want ErrUserBanned", i, err)
		}
	}

	// A paused mirror of the other replica: the wait ends at its deadline,
	// one short, and the other replica says which one is short.
	h.close()
	e = ban("eve", "1s")
	if e.GetConfirmed() != 4 || e.GetTotal() != 5 || len(e.GetLaggards()) != 0 {
		t.Fatalf("enforcement with a paused mirror on the other replica: %v, want 4/5 and no local laggard", e)
	}
	if p := e.GetReplicas()[0]; p.GetConfirmed() != 1 || p.GetTotal() != 2 || p.GetGone() {
		t.Fatalf("the other replica: %v, want 1/2", p)
	}
	h.open()

	// The other replica stops (its mirrors first, then the server and its
	// store, which removes its presence): later waits count this one only.
	for _, stop := range stopR2 {
		stop()
	}
	r2.srv.Shutdown()
	r2.store.Close()
	awaitFleet(t, r1.srv, map[string]int{})
	e = ban("trudy", "20s")
	if e.GetConfirmed() != 3 || e.GetTotal() != 3 || len(e.GetReplicas()) != 0 {
		t.Fatalf("enforcement after the other replica stopped: %v, want 3/3 and no other replica", e)
	}
}

// BenchmarkWaitAcrossReplicas is the time of a CreateBan with a wait until
// every mirror has confirmed it, 10 mirrors in all, over two replicas
// sharing an embedded etcd (fsync on): all 10 on the replica that serves
// the write, then 5 and 5, where the other replica's confirmations travel
// through its published summary (coalesced to 15 ms) and an etcd watch.
func BenchmarkWaitAcrossReplicas(b *testing.B) {
	for _, remote := range []int{0, 5} {
		b.Run(fmt.Sprintf("remote=%d", remote), func(b *testing.B) {
			m := etcdtest.Start(b, etcdtest.Config{})
			clock := &testClock{now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
			rs, admin := bootstrapReplicas(b, 2, clock.Now, m)
			for i := range 10 {
				r := rs[0]
				if i < remote {
					r = rs[1]
				}
				mirrorOn(b, r, admin, fmt.Sprintf("m%d", i), clock.Now, client.MirrorOptions{})
			}
			if remote > 0 { // a replica without mirrors has nothing to wait for
				awaitFleet(b, rs[0].srv, map[string]int{"r2": remote})
			}
			ctx := as(admin)
			i := 0
			for b.Loop() {
				i++
				req := userBan("", fmt.Sprintf("u%d", i))
				req.Wait = "20s"
				resp, err := rs[0].bans.CreateBan(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				if e := resp.GetEnforcement(); e.GetConfirmed() != 10 || e.GetTotal() != 10 {
					b.Fatalf("enforcement %v, want 10/10", e)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(i), "ms/waited-write")
		})
	}
}
