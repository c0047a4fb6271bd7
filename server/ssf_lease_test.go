package server_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/transmitter"
	"github.com/portcullis-dev/portcullis/server"
	"github.com/portcullis-dev/portcullis/ssf"
)

// replica starts a second transmitter over e's store, as another replica
// of the authority runs one, logging to log, and returns the function that
// stops its Run (a graceful stop: it gives its leases up).
func (e *ssfEnv) replica(t testing.TB, holder string, log slog.Handler) func() {
	t.Helper()
	tx := transmitter.New(transmitter.Config{Store: e.store, Authority: e.auth, Issuer: testIssuer, Clock: e.clock.Now,
		Logger: slog.New(log), MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, Holder: holder,
		LeaseRetry: 5 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); tx.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// TestSSFPushLease: with two replicas, only the holder of a push stream's
// lease delivers it (the other stands by), so the receiver gets each SET
// once; when the holder stops, the other replica takes the stream over
// from its Position and nothing is lost (the SET in flight at the stop
// may come twice: at least once).
func TestSSFPushLease(t *testing.T) {
	e := newSSFEnv(t, envOptions{}, transmitter.Config{Holder: "replica-1", LeaseRetry: 5 * time.Millisecond}, true)
	r := newReceiver(t, e.http.URL+"/.well-known/jwks.json")
	st := e.pushStream(t, e.keyWith("rp", authority.ScopeSignals), r, nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(server.TransmitterCollector(e.tx))
	lease := func() float64 {
		return metricValue(t, reg, "portcullis_ssf_push_lease", map[string]string{"stream": st.StreamID})
	}
	if v := lease(); v != 0 {
		t.Fatalf("portcullis_ssf_push_lease before Run: %v", v)
	}
	e.run()
	e.awaitHolder(t, st.StreamID, "replica-1")
	if v := lease(); v != 1 {
		t.Fatalf("portcullis_ssf_push_lease of the holder: %v, want 1", v)
	}
	standby := newLogSignal(t, transmitter.MsgStandby)
	e.replica(t, "replica-2", standby)
	standby.await(t)
	for _, u := range []string{"u1", "u2", "u3"} {
		e.ban(t, u)
	}
	r.awaitN(t, 3)
	seen := map[string]bool{}
	for _, s := range r.snapshot() {
		if seen[s.JTI] {
			t.Errorf("SET %s delivered twice while replica-1 held the lease", s.JTI)
		}
		seen[s.JTI] = true
	}

	e.stop() // replica-1 stops and gives the lease up
	e.awaitHolder(t, st.StreamID, "replica-2")
	if v := lease(); v != 0 {
		t.Fatalf("portcullis_ssf_push_lease of replica-1 after it stopped: %v, want 0", v)
	}
	for _, u := range []string{"u4", "u5"} {
		e.ban(t, u)
	}
	r.await(t, "u5", func(sets []ssf.SET) bool { return len(sets) > 0 && sets[len(sets)-1].SubjectID.Sub == "u5" })
	var got []string
	for _, u := range users(r.snapshot()) {
		if !slices.Contains(got, u) {
			got = append(got, u)
		}
	}
	if !slices.Equal(got, []string{"u1", "u2", "u3", "u4", "u5"}) {
		t.Fatalf("delivered %v, want u1..u5 in order", users(r.snapshot()))
	}
}

// TestSSFPushLeaseRunsOut: a lease left by a replica that crashed (held,
// never given up) keeps the others from delivering until it runs out on
// their clock; then one takes the stream over and delivers what waited.
func TestSSFPushLeaseRunsOut(t *testing.T) {
	standby := newLogSignal(t, transmitter.MsgStandby)
	e := newSSFEnv(t, envOptions{}, transmitter.Config{Holder: "replica-2", LeaseRetry: 5 * time.Millisecond, Logger: slog.New(standby)}, true)
	r := newReceiver(t, e.http.URL+"/.well-known/jwks.json")
	st := e.pushStream(t, e.keyWith("rp", authority.ScopeSignals), r, nil)
	until := e.clock.Now().Add(transmitter.DefaultPushLease)
	if _, err := e.store.Update(context.Background(), func(tx storage.Tx) error {
		rec, err := tx.SignalStream(st.StreamID)
		if err != nil {
			return err
		}
		rec.Pusher, rec.PushLeaseUntil = "crashed-replica", until
		return tx.PutSignalStream(rec)
	}); err != nil {
		t.Fatal(err)
	}
	e.ban(t, "u1")
	e.run()
	standby.await(t) // replica-2 found the lease held, on a clock short of its end
	if n := len(r.snapshot()); n != 0 {
		t.Fatalf("%d SETs delivered while another replica's lease held", n)
	}
	e.clock.Advance(transmitter.DefaultPushLease)
	e.awaitHolder(t, st.StreamID, "replica-2")
	if got := users(r.awaitN(t, 1)); len(got) != 1 || got[0] != "u1" {
		t.Fatalf("delivered %v, want u1", got)
	}
}

// TestSSFPushLeaseLost: a replica that finds, when it renews, that another
// one took its lease (it stalled past the lease) stops delivering the
// stream and stands by.
func TestSSFPushLeaseLost(t *testing.T) {
	lost := newLogSignal(t, transmitter.MsgLeaseLost)
	e := newSSFEnv(t, envOptions{}, transmitter.Config{Holder: "replica-1", LeaseRetry: 5 * time.Millisecond,
		PushLease: 30 * time.Millisecond, Logger: slog.New(lost)}, true)
	r := newReceiver(t, e.http.URL+"/.well-known/jwks.json")
	st := e.pushStream(t, e.keyWith("rp", authority.ScopeSignals), r, nil)
	e.run()
	e.ban(t, "u1")
	r.awaitN(t, 1)
	if _, err := e.store.Update(context.Background(), func(tx storage.Tx) error {
		rec, err := tx.SignalStream(st.StreamID)
		if err != nil {
			return err
		}
		rec.Pusher, rec.PushLeaseUntil = "replica-9", e.clock.Now().Add(time.Hour)
		return tx.PutSignalStream(rec)
	}); err != nil {
		t.Fatal(err)
	}
	lost.await(t)
	e.ban(t, "u2")
	if got := e.stream(t, st.StreamID).Pusher; got != "replica-9" {
		t.Fatalf("lease held by %q, want replica-9's kept", got)
	}
	e.stop() // replica-1 gives up nothing it does not hold
	if got := e.stream(t, st.StreamID).Pusher; got != "replica-9" {
		t.Fatalf("after replica-1 stopped the lease is %q, want replica-9's", got)
	}
	if n := len(r.snapshot()); n != 1 {
		t.Fatalf("%d SETs delivered, want u1's alone: u2's is replica-9's to deliver", n)
	}
}

// awaitHolder waits until holder holds the stream's push lease (lease
// writes have no event: the record is read every millisecond, under the
// hang guard).
func (e *ssfEnv) awaitHolder(t testing.TB, id, holder string) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for e.stream(t, id).Pusher != holder {
		if time.Now().After(deadline) {
			t.Fatalf("stream %s: lease held by %q, want %q", id, e.stream(t, id).Pusher, holder)
		}
		time.Sleep(time.Millisecond) // a poll interval: lease writes have no event
	}
}

// logSignal is a slog.Handler that closes seen at the first record whose
// message is msg, and passes warnings and errors on to the test's output.
type logSignal struct {
	slog.Handler
	msg  string
	seen chan struct{}
	once sync.Once
}

func newLogSignal(t testing.TB, msg string) *logSignal {
	return &logSignal{Handler: slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}), msg: msg, seen: make(chan struct{})}
}

func (l *logSignal) Enabled(context.Context, slog.Level) bool { return true }

func (l *logSignal) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == l.msg {
		l.once.Do(func() { close(l.seen) })
	}
	if !l.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return l.Handler.Handle(ctx, r)
}

// await waits for the message, under the hang guard.
func (l *logSignal) await(t testing.TB) {
	t.Helper()
	select {
	case <-l.seen:
	case <-time.After(hangGuard):
		t.Fatalf("no log %q", l.msg)
	}
}
