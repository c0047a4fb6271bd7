package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/transmitter"
	"github.com/portcullis-dev/portcullis/ssf"
)

// chainReceiver is a push receiver for windowed streams (SET.PrevJTI). In
// chain mode it does what a receiver putting SETs back in order does: a
// SET whose PrevJTI it has not applied waits for it, and it answers 202
// only once the SET is applied; a SET waiting for one that failed (or
// whose request was abandoned) fails too, with 503. Otherwise it applies
// every SET at once, in whatever order they come. It counts the requests
// it is handling at once, honestly: from the moment one arrives to the
// moment it answers.
type chainReceiver struct {
	t     testing.TB
	srv   *httptest.Server
	keys  *receiver // only its JWKS lookup
	chain bool
	quit  chan struct{} // closed at cleanup: nothing waits any more

	mu      sync.Mutex
	changed chan struct{}
	posts   []chainPost
	applied []ssf.SET
	done    map[string]bool // applied
	failed  map[string]bool // answered other than 202 (until sent again)
	now     int             // requests being handled
	most    int             // the most at once
	// barrier: the first request waits for this many at once before it
	// goes on.
	barrier int
	// fail, when set, answers 503 to the attempt (from 1) of the SET about
	// user sub when it returns true.
	fail func(sub string, attempt int) bool
	// hold, when set, holds the attempt of the SET about user sub until
	// the returned channel closes or the request is abandoned.
	hold func(sub string, attempt int) <-chan struct{}
}

// chainPost is one POST the receiver got.
type chainPost struct {
	set     ssf.SET
	raw     string
	attempt int // of this jti, from 1
}

func newChainReceiver(t testing.TB, jwksURL string, chain bool) *chainReceiver {
	r := &chainReceiver{t: t, chain: chain, quit: make(chan struct{}), changed: make(chan struct{}),
		keys: &receiver{t: t, jwksURL: jwksURL, keys: map[string]ssf.JWK{}, changed: make(chan struct{})},
		done: map[string]bool{}, failed: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() { close(r.quit); r.srv.Close() })
	return r
}

// setJWKS points the receiver at another authority's JWKS (a restart).
func (r *chainReceiver) setJWKS(url string) {
	r.keys.mu.Lock()
	r.keys.jwksURL = url
	r.keys.mu.Unlock()
}

// broadcast wakes every waiter; r.mu is held.
func (r *chainReceiver) broadcast() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// waitLocked waits, r.mu held, until ok or stop closes; false when the hang
// guard ran out.
func (r *chainReceiver) waitLocked(ok func() bool, stop <-chan struct{}) bool {
	guard := time.NewTimer(hangGuard)
	defer guard.Stop()
	for !ok() {
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-stop:
			r.mu.Lock()
			return true
		case <-r.quit:
			r.mu.Lock()
			return true
		case <-guard.C:
			r.mu.Lock()
			return false
		}
		r.mu.Lock()
	}
	return true
}

func (r *chainReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.now++
	r.most = max(r.most, r.now)
	r.broadcast()
	r.mu.Unlock()
	code := r.handle(req, string(body))
	r.mu.Lock()
	r.now--
	r.broadcast()
	r.mu.Unlock()
	w.WriteHeader(code)
}

func (r *chainReceiver) handle(req *http.Request, body string) int {
	r.mu.Lock()
	aud := r.keys.audience
	r.mu.Unlock()
	set, err := ssf.Verify(body, ssf.VerifyOptions{Issuer: testIssuer, Audience: aud, Key: r.keys.key,
		Now: time.Now(), MaxAge: 100 * 365 * 24 * time.Hour, MaxSkew: 100 * 365 * 24 * time.Hour})
	if err != nil {
		r.t.Errorf("a pushed SET does not verify: %v", err)
		return http.StatusBadRequest
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	attempt := 1
	for _, p := range r.posts {
		if p.set.JTI == set.JTI {
			attempt++
		}
	}
	r.posts = append(r.posts, chainPost{set: set, raw: body, attempt: attempt})
	delete(r.failed, set.JTI)
	r.broadcast()
	refuse := func() int {
		r.failed[set.JTI] = true
		r.broadcast()
		return http.StatusServiceUnavailable
	}
	if r.barrier > 0 && len(r.posts) == 1 {
		n := r.barrier
		if !r.waitLocked(func() bool { return r.now >= n }, nil) {
			r.t.Errorf("receiver: %d requests at once never came (the most: %d)", n, r.most)
			return refuse()
		}
	}
	sub := set.SubjectID.Sub
	if r.fail != nil && r.fail(sub, attempt) {
		return refuse()
	}
	if r.hold != nil {
		if ch := r.hold(sub, attempt); ch != nil {
			r.waitLocked(func() bool { return false }, mergeDone(ch, req.Context().Done()))
			if req.Context().Err() != nil {
				return refuse() // abandoned: the transmitter did not see an answer
			}
		}
	}
	if r.chain && set.PrevJTI != "" && !r.done[set.JTI] {
		prev := set.PrevJTI
		if !r.waitLocked(func() bool { return r.done[prev] || r.failed[prev] }, req.Context().Done()) {
			r.t.Errorf("receiver: %s waited for its predecessor %s, never sent", set.JTI, prev)
			return refuse()
		}
		if !r.done[prev] {
			return refuse() // its predecessor failed or the request was abandoned
		}
	}
	if !r.done[set.JTI] {
		r.done[set.JTI] = true
		r.applied = append(r.applied, set)
		r.broadcast()
	}
	return http.StatusAccepted
}

// mergeDone closes when either channel does.
func mergeDone(a, b <-chan struct{}) <-chan struct{} {
	out := make(chan struct{})
	go func() {
		defer close(out)
		select {
		case <-a:
		case <-b:
		}
	}()
	return out
}

// await waits until the receiver's state satisfies ok (r.mu held).
func (r *chainReceiver) await(t testing.TB, what string, ok func() bool) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.waitLocked(ok, nil) {
		t.Fatalf("receiver: %s never came; applied %d SETs after %d POSTs", what, len(r.applied), len(r.posts))
	}
}

// awaitApplied waits until n SETs are applied and returns them in order.
func (r *chainReceiver) awaitApplied(t testing.TB, n int) []ssf.SET {
	t.Helper()
	r.await(t, strconv.Itoa(n)+" SETs applied", func() bool { return len(r.applied) >= n })
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ssf.SET(nil), r.applied...)
}

func (r *chainReceiver) snapshot() []chainPost {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]chainPost(nil), r.posts...)
}

// windowStream creates a push stream to r with portcullis_max_in_flight n.
func (e *ssfEnv) windowStream(t testing.TB, key string, r *chainReceiver, n int) ssf.StreamConfig {
	t.Helper()
	st := e.createStream(t, key, map[string]any{
		"events_requested": transmitter.Supported,
		"delivery": map[string]any{"method": ssf.DeliveryPush, "endpoint_url": r.srv.URL + "/events",
			"authorization_header": "Bearer receiver-secret", "portcullis_max_in_flight": n},
	})
	if st.Delivery == nil || st.Delivery.MaxInFlight != n {
		t.Fatalf("the stream echoes delivery %+v, want portcullis_max_in_flight %d", st.Delivery, n)
	}
	r.mu.Lock()
	r.keys.audience = st.StreamID
	r.mu.Unlock()
	return st
}

// awaitPosition waits until the stream's stored Position reaches rev. The
// worker writes it without an event (nothing in the log to follow), so
// this looks at the record every millisecond, under the hang guard.
func (e *ssfEnv) awaitPosition(t testing.TB, id string, rev int64) storage.SignalStream {
	t.Helper()
	guard := time.After(hangGuard)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		st := e.stream(t, id)
		if st.Position >= rev {
			return st
		}
		select {
		case <-tick.C:
		case <-guard:
			t.Fatalf("stream %s: Position %d never reached %d", id, st.Position, rev)
		}
	}
}

// awaitDelivered waits until the worker has taken n acknowledgements of
// the stream (it counts one when it takes it), looking every millisecond.
func (e *ssfEnv) awaitDelivered(t testing.TB, id string, n uint64) {
	t.Helper()
	guard := time.After(hangGuard)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		var got uint64
		for _, c := range e.tx.Counts() {
			if c.StreamID == id {
				got = c.Delivered
			}
		}
		if got >= n {
			return
		}
		select {
		case <-tick.C:
		case <-guard:
			t.Fatalf("stream %s: the worker took %d acknowledgements, want %d", id, got, n)
		}
	}
}

// revisionOf is the revision in a jti (<stream>-<revision>-<index>).
func revisionOf(t testing.TB, jti string) int64 {
	t.Helper()
	parts := strings.Split(jti, "-")
	if len(parts) < 3 {
		t.Fatalf("jti %q: no revision", jti)
	}
	rev, err := strconv.ParseInt(parts[len(parts)-2], 10, 64)
	if err != nil {
		t.Fatalf("jti %q: %v", jti, err)
	}
	return rev
}

// banAll bans the users in order and returns them.
func (e *ssfEnv) banAll(t testing.TB, prefix string, from, to int) []string {
	t.Helper()
	var out []string
	for i := from; i < to; i++ {
		u := prefix + strconv.Itoa(i)
		e.ban(t, u)
		out = append(out, u)
	}
	return out
}

// checkChain checks what a windowed stream delivered against A's order of
// bans (want): the SETs applied are exactly want, in order; every POST's
// PrevJTI is empty or the jti of the SET just before it in that order; the
// jti of every SET about one user is the same in every attempt.
func checkChain(t testing.TB, want []string, applied []ssf.SET, posts []chainPost) {
	t.Helper()
	if got := strings.Join(users(applied), ","); got != strings.Join(want, ",") {
		t.Fatalf("applied, by the PrevJTI chain:\n  %s\nwant A's order of bans:\n  %s", got, strings.Join(want, ","))
	}
	jtiOf := map[string]string{} // user -> jti
	index := map[string]int{}    // jti -> place in want
	for i, s := range applied {
		jtiOf[s.SubjectID.Sub], index[s.JTI] = s.JTI, i
	}
	for _, p := range posts {
		i, ok := index[p.set.JTI]
		if !ok || jtiOf[p.set.SubjectID.Sub] != p.set.JTI {
			t.Errorf("POST of %s (%s): not one of the SETs applied", p.set.JTI, p.set.SubjectID.Sub)
			continue
		}
		if p.set.PrevJTI != "" && (i == 0 || p.set.PrevJTI != applied[i-1].JTI) {
			t.Errorf("POST of %s (attempt %d) names %q as its predecessor, want %q or none", p.set.JTI, p.attempt,
				p.set.PrevJTI, applied[max(i-1, 0)].JTI)
		}
	}
}

// attempts counts the POSTs of each user's SET.
func attempts(posts []chainPost) map[string]int {
	n := map[string]int{}
	for _, p := range posts {
		n[p.set.SubjectID.Sub]++
	}
	return n
}

// TestSSFWindowInFlight: a stream asking for 8 SETs in flight gets a
// burst of 200 bans with several requests at once, each SET sent once,
// the PrevJTI chain putting them back in A's order; Position reaches the
// last ban.
func TestSSFWindowInFlight(t *testing.T) {
	e := newSSFEnv(t, envOptions{}, transmitter.Config{}, true)
	r := newChainReceiver(t, e.http.URL+"/.well-known/jwks.json", true)
	r.barrier = 2 // the first SET is answered only once a second one is in flight
	st := e.windowStream(t, e.keyWith("rp", authority.ScopeSignals), r, 8)
	want := e.banAll(t, "w", 0, 200)
	e.run()
	applied := r.awaitApplied(t, len(want))
	posts := r.snapshot()
	checkChain(t, want, applied, posts)
	for u, n := range attempts(posts) {
		if n != 1 {
			t.Errorf("the SET about %s was sent %d times, with no failure", u, n)
		}
	}
	r.mu.Lock()
	most := r.most
	r.mu.Unlock()
	if most < 2 || most > 8 {
		t.Errorf("at most %d requests at once, want 2 to 8", most)
	}
	named := 0
	for _, p := range posts {
		if p.set.PrevJTI != "" {
			named++
		}
	}
	if named == 0 {
		t.Error("no SET names a predecessor")
	}
	for _, p := range posts {
		if p.set.SubjectID.Sub == want[0] && p.set.PrevJTI != "" {
			t.Errorf("the first SET names %q as its predecessor", p.set.PrevJTI)
		}
	}
	e.awaitPosition(t, st.StreamID, revisionOf(t, applied[len(applied)-1].JTI))
}

// TestSSFWindowTransientFailures: the receiver answers 503 to the 10th
// and 11th SETs once; the SETs after them in flight fail too (their
// predecessor never comes); every SET is applied in order, and the first
// one sent again names no predecessor.
func TestSSFWindowTransientFailures(t *testing.T) {
	e := newSSFEnv(t, envOptions{}, transmitter.Config{}, true)
	r := newChainReceiver(t, e.http.URL+"/.well-known/jwks.json", true)
	r.fail = func(sub string, attempt int) bool { return attempt == 1 && (sub == "f9" || sub == "f10") }
	st := e.windowStream(t, e.keyWith("rp", authority.ScopeSignals), r, 8)
	want := e.banAll(t, "f", 0, 60)
	e.run()
	applied := r.awaitApplied(t, len(want))
	posts := r.snapshot()
	checkChain(t, want, applied, posts)
	n := attempts(posts)
	for _, u := range want[:9] {
		if n[u] != 1 {
			t.Errorf("the SET about %s, before the failures, was sent %d times", u, n[u])
		}
	}
	if n["f9"] < 2 || n["f10"] < 2 {
		t.Errorf("f9 sent %d times, f10 %d times: both failed once", n["f9"], n["f10"])
	}
	for _, p := range posts {
		if p.set.SubjectID.Sub == "f9" && p.attempt == 2 && p.set.PrevJTI != "" {
			t.Errorf("the first SET sent again after the failure names %q as its predecessor, want none", p.set.PrevJTI)
		}
	}
	// Position at the last SET: the worker took every answer.
	s := e.awaitPosition(t, st.StreamID, revisionOf(t, applied[len(applied)-1].JTI))
	for _, c := range e.tx.Counts() {
		if c.StreamID == st.StreamID && (c.Failed < 2 || c.Delivered < uint64(len(want))) {
			t.Errorf("counts %+v, want 2 or more failures, %d or more delivered", c, len(want))
		}
	}
	if !s.OutageSince.IsZero() || s.Status != "enabled" {
		t.Errorf("after recovery: status %s, outage since %v", s.Status, s.OutageSince)
	}
}

// TestSSFWindowRestart: the authority stopped while SETs are in flight
// (one of them held by the receiver) and started again over the same
// bbolt file loses nothing; the first SET the new run sends names no
// predecessor, and the Position written at the stop is before the held
// SET.
func TestSSFWindowRestart(t *testing.T) {
	e1 := newSSFEnv(t, envOptions{}, transmitter.Config{}, false)
	r := newChainReceiver(t, e1.http.URL+"/.well-known/jwks.json", true)
	release := make(chan struct{}) // never closed: the held SET's request ends with the stop
	r.hold = func(sub string, attempt int) <-chan struct{} {
		if sub == "r30" && attempt == 1 {
			return release
		}
		return nil
	}
	st := e1.windowStream(t, e1.keyWith("rp", authority.ScopeSignals), r, 8)
	want := e1.banAll(t, "r", 0, 60)
	r.await(t, "the POST of r30", func() bool {
		for _, p := range r.posts {
			if p.set.SubjectID.Sub == "r30" {
				return true
			}
		}
		return false
	})
	e1.shutdown()
	// The new run's SETs are those issued after this (an abandoned request
	// of the old run may still be on its way to the handler).
	e1.clock.Advance(time.Hour)
	restart := e1.clock.Now()

	e2 := newSSFEnv(t, envOptions{path: e1.path, clock: e1.clock}, transmitter.Config{}, true)
	pos := e2.stream(t, st.StreamID).Position
	want = append(want, e2.banAll(t, "r", 60, 80)...)
	r.setJWKS(e2.http.URL + "/.well-known/jwks.json")
	e2.run()
	applied := r.awaitApplied(t, len(want))
	posts := r.snapshot()
	checkChain(t, want, applied, posts)
	held := ""
	for _, s := range applied {
		if s.SubjectID.Sub == "r30" {
			held = s.JTI
		}
	}
	if pos >= revisionOf(t, held) {
		t.Errorf("Position at the stop %d passes the held SET %s", pos, held)
	}
	// The first SET after Position is the first the new run sends.
	var first string
	for _, s := range applied {
		if revisionOf(t, s.JTI) > pos {
			first = s.JTI
			break
		}
	}
	for _, p := range posts {
		if p.set.JTI == first && !p.set.IssuedAt.Before(restart) {
			if p.set.PrevJTI != "" {
				t.Errorf("the first SET after the restart (%s) names %q as its predecessor", first, p.set.PrevJTI)
			}
			return
		}
	}
	t.Errorf("the new run never sent %s", first)
}

// TestSSFWindowPositionBehindHole: a receiver that holds the 5th SET while
// it takes every later one: the Position the worker writes (at the
// latest, when it stops) stays before the 5th's revision until it is
// acknowledged; started again, the worker sends it (naming no
// predecessor) and Position reaches the last SET.
func TestSSFWindowPositionBehindHole(t *testing.T) {
	e := newSSFEnv(t, envOptions{}, transmitter.Config{}, true)
	r := newChainReceiver(t, e.http.URL+"/.well-known/jwks.json", false) // takes any order
	release := make(chan struct{})
	r.hold = func(sub string, attempt int) <-chan struct{} {
		if sub == "h4" && attempt == 1 {
			return release
		}
		return nil
	}
	st := e.windowStream(t, e.keyWith("rp", authority.ScopeSignals), r, 8)
	want := e.banAll(t, "h", 0, 40)
	e.run()
	r.awaitApplied(t, len(want)-1) // all but h4
	// The worker counts an acknowledgement when it takes it.
	e.awaitDelivered(t, st.StreamID, uint64(len(want)-1))
	var h3, h4, last int64
	for _, p := range r.snapshot() {
		switch p.set.SubjectID.Sub {
		case "h3":
			h3 = revisionOf(t, p.set.JTI)
		case "h4":
			h4 = revisionOf(t, p.set.JTI)
		case "h39":
			last = revisionOf(t, p.set.JTI)
		}
	}
	e.stop() // writes Position; the held request is abandoned
	if pos := e.stream(t, st.StreamID).Position; pos < h3 || pos >= h4 {
		t.Fatalf("Position %d with h4 (revision %d) unacknowledged and h3 (%d) acknowledged", pos, h4, h3)
	}
	close(release)
	before := len(r.snapshot())
	e.run()
	e.awaitPosition(t, st.StreamID, last)
	r.awaitApplied(t, len(want))
	for _, p := range r.snapshot()[before:] {
		if p.set.SubjectID.Sub == "h4" {
			if p.set.PrevJTI != "" {
				t.Errorf("h4 sent again names %q as its predecessor", p.set.PrevJTI)
			}
			return
		}
	}
	t.Error("h4 was not sent again")
}

// TestSSFWindowOneAtATime: a stream that asks for 1 (or nothing) gets one
// SET at a time, none naming a predecessor (no claim on the wire).
func TestSSFWindowOneAtATime(t *testing.T) {
	for _, n := range []int{0, 1} {
		t.Run("max_in_flight="+strconv.Itoa(n), func(t *testing.T) {
			e := newSSFEnv(t, envOptions{}, transmitter.Config{}, true)
			r := newChainReceiver(t, e.http.URL+"/.well-known/jwks.json", false)
			e.windowStream(t, e.keyWith("rp", authority.ScopeSignals), r, n)
			want := e.banAll(t, "o", 0, 20)
			e.run()
			applied := r.awaitApplied(t, len(want))
			if got := strings.Join(users(applied), ","); got != strings.Join(want, ",") {
				t.Errorf("delivered %s", got)
			}
			for _, p := range r.snapshot() {
				payload, err := base64URL(strings.Split(p.raw, ".")[1])
				if p.set.PrevJTI != "" || err != nil || strings.Contains(string(payload), "portcullis_prev_jti") {
					t.Errorf("SET %s names a predecessor (%v): %s", p.set.JTI, err, payload)
				}
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.most != 1 {
				t.Errorf("%d requests at once, want 1", r.most)
			}
		})
	}
}

// TestSSFWindowOutagePauses: a windowed stream whose receiver keeps
// failing records the outage, and past MaxOutage (on the injected clock)
// is paused with a reason, as a one-at-a-time stream is; enabled again
// with the receiver back, it delivers everything in order.
func TestSSFWindowOutagePauses(t *testing.T) {
	e := newSSFEnv(t, envOptions{}, transmitter.Config{MaxOutage: time.Hour}, false)
	r := newChainReceiver(t, e.http.URL+"/.well-known/jwks.json", true)
	var down sync.Mutex // held while the receiver fails
	failing := true
	r.fail = func(string, int) bool { down.Lock(); defer down.Unlock(); return failing }
	key := e.keyWith("rp", authority.ScopeSignals)
	st := e.windowStream(t, key, r, 8)
	want := e.banAll(t, "o", 0, 20)
	// The worker records the outage at the first failure, before it
	// sends anything again.
	r.await(t, "a SET sent again", func() bool { return len(r.posts) > 0 && r.posts[len(r.posts)-1].attempt > 1 })
	if s := e.stream(t, st.StreamID); s.Status != "enabled" || s.OutageSince.IsZero() || !strings.Contains(s.LastError, "503") {
		t.Fatalf("after failures within MaxOutage: status %s, outage since %v, last error %q", s.Status, s.OutageSince, s.LastError)
	}
	e.clock.Advance(61 * time.Minute)
	s := e.awaitStream(t, st.StreamID, func(s storage.SignalStream) bool { return s.Status == "paused" })
	if !strings.Contains(s.StatusReason, "failed") || !strings.Contains(s.StatusReason, "503") {
		t.Errorf("reason = %q", s.StatusReason)
	}
	down.Lock()
	failing = false
	down.Unlock()
	e.must(t, http.StatusOK, "POST", "/ssf/status", e.keyWith("rp2", authority.ScopeAdmin),
		map[string]any{"stream_id": st.StreamID, "status": "enabled"}, nil)
	checkChain(t, want, r.awaitApplied(t, len(want)), r.snapshot())
}

// TestSSFWindowReconfigured: a windowed stream reconfigured mid-burst (its
// window changed, then paused and enabled again) restarts its worker each
// time; the SETs in flight at the change, and every later one, are applied
// in A's order, and no SET waits at the receiver for one never sent (each
// new worker starts its chain afresh).
func TestSSFWindowReconfigured(t *testing.T) {
	e := newSSFEnv(t, envOptions{}, transmitter.Config{}, false)
	r := newChainReceiver(t, e.http.URL+"/.well-known/jwks.json", true)
	key := e.keyWith("rp", authority.ScopeSignals)
	st := e.windowStream(t, key, r, 8)
	want := e.banAll(t, "c", 0, 30)
	r.awaitApplied(t, 10)
	e.must(t, http.StatusOK, "PATCH", "/ssf/streams", key, map[string]any{"stream_id": st.StreamID,
		"delivery": map[string]any{"method": ssf.DeliveryPush, "endpoint_url": r.srv.URL + "/events",
			"authorization_header": "Bearer receiver-secret", "portcullis_max_in_flight": 3}}, nil)
	want = append(want, e.banAll(t, "c", 30, 50)...)
	e.must(t, http.StatusOK, "POST", "/ssf/status", key, map[string]any{"stream_id": st.StreamID, "status": "paused"}, nil)
	want = append(want, e.banAll(t, "c", 50, 60)...)
	e.must(t, http.StatusOK, "POST", "/ssf/status", key, map[string]any{"stream_id": st.StreamID, "status": "enabled"}, nil)
	want = append(want, e.banAll(t, "c", 60, 70)...)
	checkChain(t, want, r.awaitApplied(t, len(want)), r.snapshot())
}
