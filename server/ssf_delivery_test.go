package server_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/transmitter"
	"github.com/portcullis-dev/portcullis/server"
	"github.com/portcullis-dev/portcullis/ssf"
)

func base64URL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// ban bans a user in every tenant.
func (e *ssfEnv) ban(t testing.TB, user string) storage.Ban {
	t.Helper()
	b, _, err := e.auth.CreateBan(context.Background(), actor, authority.BanInput{TenantID: "*", Kind: storage.SubjectUser, Value: user, Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// users returns the sub of each SET's subject, in order.
func users(sets []ssf.SET) []string {
	var out []string
	for _, s := range sets {
		if s.SubjectID != nil {
			out = append(out, s.SubjectID.Sub)
		}
	}
	return out
}

// TestSSFPausedDeliversNothing: a paused stream sends nothing while an
// enabled one beside it does; enabled again, it sends what it held, from
// its position.
func TestSSFPausedDeliversNothing(t *testing.T) {
	e := newSSFEnv(t, envOptions{}, transmitter.Config{}, false)
	key := e.keyWith("rp", authority.ScopeSignals)
	paused := newReceiver(t, e.http.URL+"/.well-known/jwks.json")
	witness := newReceiver(t, e.http.URL+"/.well-known/jwks.json")
	ps := e.pushStream(t, key, paused, nil)
	e.pushStream(t, key, witness, nil)
	e.ban(t, "u1")
	paused.awaitN(t, 1)
	witness.awaitN(t, 1)

	e.must(t, http.StatusOK, "POST", "/ssf/status", key, map[string]any{"stream_id": ps.StreamID, "status": "paused"}, nil)
	e.ban(t, "u2")
	e.ban(t, "u3")
	witness.awaitN(t, 3)
	// The witness got both; the paused stream's worker is stopped, so it
	// has not (its stop waited for any push in flight).
	if n := len(paused.await(t, "anything", func([]ssf.SET) bool { return true })); n != 1 {
		t.Fatalf("the paused stream delivered %d SETs", n)
	}
	e.must(t, http.StatusOK, "POST", "/ssf/status", key, map[string]any{"stream_id": ps.StreamID, "status": "enabled"}, nil)
	sets := paused.awaitN(t, 3)
	if got := strings.Join(users(sets), ","); got != "u1,u2,u3" {
		t.Errorf("after resuming: %s", got)
	}
}

// TestSSFRetriesInOrder: a receiver answering 503 for a while gets every
// SET, in order, none lost.
func TestSSFRetriesInOrder(t *testing.T) {
	e := newSSFEnv(t, envOptions{}, transmitter.Config{}, false)
	r := newReceiver(t, e.http.URL+"/.well-known/jwks.json")
	r.answer = func(n int) int {
		if n <= 15 && n%3 != 0 { // two of every three of the first 15 posts fail
			return http.StatusServiceUnavailable
		}
		return http.StatusAccepted
	}
	st := e.pushStream(t, e.keyWith("rp", authority.ScopeSignals), r, nil)
	var want []string
	for i := range 5 {
		u := "u" + strconv.Itoa(i)
		e.ban(t, u)
		want = append(want, u)
	}
	sets := r.awaitN(t, 5)
	if got := strings.Join(users(sets), ","); got != strings.Join(want, ",") {
		t.Errorf("delivered %s, want %s", got, strings.Join(want, ","))
	}
	// One more, which goes through at once: the worker pushes it only
	// after it has counted the fifth and recorded the outage's end.
	e.ban(t, "sentinel")
	r.awaitN(t, 6)
	var c transmitter.StreamCounts
	for _, n := range e.tx.Counts() {
		if n.StreamID == st.StreamID {
			c = n
		}
	}
	if c.Delivered < 5 || c.Failed != 10 || c.Skipped != 0 {
		t.Errorf("counts %+v, want 5 or 6 delivered, 10 failures", c)
	}
	if s := e.stream(t, st.StreamID); s.Status != "enabled" || !s.OutageSince.IsZero() {
		t.Errorf("after recovery: status %s, outage since %v", s.Status, s.OutageSince)
	}
}

// TestSSFRefusedSkipped: a SET the receiver refuses (400, RFC 8935 §2.3)
// is skipped for good, counted, and the next one follows; the stream's
// authorization_header is sent with every push but never shown.
func TestSSFRefusedSkipped(t *testing.T) {
	e := newSSFEnv(t, envOptions{}, transmitter.Config{}, false)
	r := newReceiver(t, e.http.URL+"/.well-known/jwks.json")
	r.answer = func(n int) int {
		if n == 1 {
			return http.StatusBadRequest
		}
		return http.StatusAccepted
	}
	key := e.keyWith("rp", authority.ScopeSignals)
	st := e.pushStream(t, key, r, nil)
	e.ban(t, "refused")
	e.ban(t, "taken")
	e.ban(t, "sentinel") // pushed only once the worker has counted the one before
	if got := users(r.awaitN(t, 2)); strings.Join(got, ",") != "taken,sentinel" {
		t.Errorf("delivered %v, want taken and sentinel", got)
	}
	var c transmitter.StreamCounts
	for _, n := range e.tx.Counts() {
		if n.StreamID == st.StreamID {
			c = n
		}
	}
	if c.Skipped != 1 || c.Delivered < 1 || c.Failed != 0 {
		t.Errorf("counts %+v, want 1 skipped, 1 or 2 delivered", c)
	}
	_, body := e.call(t, "GET", "/ssf/streams?stream_id="+st.StreamID, key, nil)
	if strings.Contains(string(body), "authorization_header") || strings.Contains(string(body), r.auth) {
		t.Errorf("the stream shows its authorization header: %s", body)
	}
}

// TestSSFOutagePauses: a receiver failing for longer than MaxOutage (on
// the injected clock) gets its stream paused with a reason.
func TestSSFOutagePauses(t *testing.T) {
	e := newSSFEnv(t, envOptions{}, transmitter.Config{MaxOutage: time.Hour}, false)
	r := newReceiver(t, e.http.URL+"/.well-known/jwks.json")
	r.answer = func(int) int { return http.StatusServiceUnavailable }
	st := e.pushStream(t, e.keyWith("rp", authority.ScopeSignals), r, nil)
	e.ban(t, "u1")
	// The worker records the outage at the first failure, before it
	// retries.
	r.awaitPosts(t, 3)
	if s := e.stream(t, st.StreamID); s.Status != "enabled" || s.OutageSince.IsZero() || !strings.Contains(s.LastError, "503") {
		t.Fatalf("after two failures within MaxOutage: status %s, outage since %v, last error %q", s.Status, s.OutageSince, s.LastError)
	}
	e.clock.Advance(61 * time.Minute)
	s := e.awaitStream(t, st.StreamID, func(s storage.SignalStream) bool { return s.Status == "paused" })
	if !strings.Contains(s.StatusReason, "failed") || !strings.Contains(s.StatusReason, "503") {
		t.Errorf("reason = %q", s.StatusReason)
	}
	// Enabled again with the receiver back, it delivers what it held.
	r.mu.Lock()
	r.answer = nil
	r.mu.Unlock()
	key := e.keyWith("rp2", authority.ScopeAdmin)
	e.must(t, http.StatusOK, "POST", "/ssf/status", key, map[string]any{"stream_id": st.StreamID, "status": "enabled"}, nil)
	if got := users(r.awaitN(t, 1)); got[0] != "u1" {
		t.Errorf("after the outage: %v", got)
	}
}

// TestSSFRestartContinues: the authority stopped mid-stream and started
// again over the same bbolt file delivers, from the stream's position,
// every event committed meanwhile; nothing is lost.
func TestSSFRestartContinues(t *testing.T) {
	e1 := newSSFEnv(t, envOptions{}, transmitter.Config{}, false)
	r := newReceiver(t, e1.http.URL+"/.well-known/jwks.json")
	key := e1.keyWith("rp", authority.ScopeSignals)
	e1.pushStream(t, key, r, nil)
	e1.ban(t, "before")
	r.awaitN(t, 1)
	e1.ban(t, "racing") // may or may not be delivered before the stop
	e1.shutdown()

	e2 := newSSFEnv(t, envOptions{path: e1.path, clock: e1.clock}, transmitter.Config{}, true)
	e2.ban(t, "while-down")
	r.mu.Lock()
	r.jwksURL = e2.http.URL + "/.well-known/jwks.json"
	r.mu.Unlock()
	e2.run()
	e2.ban(t, "after")
	sets := r.await(t, "the events of both runs", func(s []ssf.SET) bool {
		u := users(s)
		return len(u) > 0 && u[len(u)-1] == "after"
	})
	// At least once: "racing" may come twice (same jti), nothing is missing.
	seen := map[string]string{}
	var order []string
	for _, s := range sets {
		if prev, ok := seen[s.JTI]; ok && prev != s.SubjectID.Sub {
			t.Errorf("jti %s reused for %s and %s", s.JTI, prev, s.SubjectID.Sub)
		} else if !ok {
			order = append(order, s.SubjectID.Sub)
		}
		seen[s.JTI] = s.SubjectID.Sub
	}
	if got := strings.Join(order, ","); got != "before,racing,while-down,after" {
		t.Errorf("delivered (first of each jti) %s", got)
	}
}

// poll polls a stream and returns the SETs by jti and moreAvailable.
func (e *ssfEnv) poll(t testing.TB, key, id string, body map[string]any) (map[string]string, bool) {
	t.Helper()
	var resp struct {
		Sets          map[string]string `json:"sets"`
		MoreAvailable bool              `json:"moreAvailable"`
	}
	e.must(t, http.StatusOK, "POST", "/ssf/poll/"+id, key, body, &resp)
	return resp.Sets, resp.MoreAvailable
}

// verifyAll verifies polled SETs and returns them by jti.
func verifyAll(t testing.TB, r *receiver, aud string, sets map[string]string) map[string]ssf.SET {
	t.Helper()
	out := map[string]ssf.SET{}
	for jti, raw := range sets {
		s, err := ssf.Verify(raw, ssf.VerifyOptions{Issuer: testIssuer, Audience: aud, Key: r.key,
			Now: time.Now(), MaxAge: 100 * 365 * 24 * time.Hour, MaxSkew: 100 * 365 * 24 * time.Hour})
		if err != nil {
			t.Fatalf("polled SET %s: %v", jti, err)
		}
		if s.JTI != jti {
			t.Errorf("SET under %s has jti %s", jti, s.JTI)
		}
		out[jti] = s
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// TestSSFPoll: maxEvents, returnImmediately, acknowledgements, and
// unacknowledged SETs delivered again.
func TestSSFPoll(t *testing.T) {
	e := newSSFEnv(t, envOptions{}, transmitter.Config{}, false)
	key := e.keyWith("rp", authority.ScopeSignals)
	st := e.createStream(t, key, map[string]any{"events_requested": transmitter.Supported})
	r := newReceiver(t, e.http.URL+"/.well-known/jwks.json") // only for its key lookup
	for i := range 5 {
		e.ban(t, "p"+strconv.Itoa(i))
	}
	first, more := e.poll(t, key, st.StreamID, map[string]any{"maxEvents": 2, "returnImmediately": true})
	if len(first) != 2 || !more {
		t.Fatalf("first poll: %d SETs, moreAvailable %v", len(first), more)
	}
	got := verifyAll(t, r, st.StreamID, first)
	for _, s := range got {
		if u := s.SubjectID.Sub; u != "p0" && u != "p1" {
			t.Errorf("first poll has %s, want p0 and p1", u)
		}
	}
	// Not acknowledged: the same two again.
	again, _ := e.poll(t, key, st.StreamID, map[string]any{"maxEvents": 2, "returnImmediately": true})
	if ks := sortedKeys(again); len(ks) != 2 || again[ks[0]] == "" || first[ks[0]] == "" || first[ks[1]] == "" {
		t.Errorf("unacknowledged SETs not delivered again: %v vs %v", sortedKeys(again), sortedKeys(first))
	}
	// Acknowledge them: the next three.
	rest, more := e.poll(t, key, st.StreamID, map[string]any{"ack": sortedKeys(first), "maxEvents": 10, "returnImmediately": true})
	if len(rest) != 3 || more {
		t.Fatalf("after the ack: %d SETs, moreAvailable %v", len(rest), more)
	}
	for _, s := range verifyAll(t, r, st.StreamID, rest) {
		if u := s.SubjectID.Sub; u == "p0" || u == "p1" {
			t.Errorf("acknowledged %s delivered again", u)
		}
	}
	// Acknowledging everything moves the position past them.
	none, more := e.poll(t, key, st.StreamID, map[string]any{"ack": sortedKeys(rest), "returnImmediately": true})
	if len(none) != 0 || more {
		t.Errorf("after acknowledging everything: %d SETs, moreAvailable %v", len(none), more)
	}
	if s := e.stream(t, st.StreamID); len(s.Acked) != 0 || s.Position < 5 {
		t.Errorf("position %d, acked %v", s.Position, s.Acked)
	}
	// Without returnImmediately the poll waits for the next SET.
	done := make(chan map[string]string, 1)
	go func() {
		sets, _ := e.poll(t, key, st.StreamID, map[string]any{"returnImmediately": false})
		done <- sets
	}()
	e.ban(t, "late")
	select {
	case sets := <-done:
		if len(sets) != 1 {
			t.Fatalf("long poll returned %d SETs", len(sets))
		}
		for _, s := range verifyAll(t, r, st.StreamID, sets) {
			if s.SubjectID.Sub != "late" {
				t.Errorf("long poll returned %s", s.SubjectID.Sub)
			}
		}
	case <-time.After(hangGuard):
		t.Fatal("the long poll never returned")
	}
}

// TestSSFCompacted: a stream whose position the log no longer holds is
// paused with a reason; a poll answers REVISION_COMPACTED; a push worker
// that finds it so pauses its stream too.
func TestSSFCompacted(t *testing.T) {
	e := newSSFEnv(t, envOptions{store: bolt.Options{RetainRevisions: 5}}, transmitter.Config{}, true)
	key := e.keyWith("rp", authority.ScopeSignals)
	r := newReceiver(t, e.http.URL+"/.well-known/jwks.json")
	pollSt := e.createStream(t, key, map[string]any{"events_requested": transmitter.Supported})
	pushSt := e.pushStream(t, key, r, nil)
	for i := range 20 {
		e.ban(t, "c"+strconv.Itoa(i))
	}
	code, body := e.call(t, "POST", "/ssf/poll/"+pollSt.StreamID, key, map[string]any{"returnImmediately": true})
	if code != http.StatusBadRequest || !strings.Contains(string(body), "REVISION_COMPACTED") {
		t.Errorf("poll of a compacted stream: %d %s", code, body)
	}
	if s := e.stream(t, pollSt.StreamID); s.Status != "paused" || !strings.Contains(s.StatusReason, "lost") {
		t.Errorf("poll stream after compaction: %s %q", s.Status, s.StatusReason)
	}
	e.run()
	s := e.awaitStream(t, pushSt.StreamID, func(s storage.SignalStream) bool { return s.Status == "paused" })
	if !strings.Contains(s.StatusReason, "lost") {
		t.Errorf("push stream reason %q", s.StatusReason)
	}
	// Enabled again, it continues from the current revision.
	e.must(t, http.StatusOK, "POST", "/ssf/status", key, map[string]any{"stream_id": pushSt.StreamID, "status": "enabled"}, nil)
	e.ban(t, "fresh")
	if got := users(r.awaitN(t, 1)); got[0] != "fresh" {
		t.Errorf("after re-enabling: %v", got)
	}
}

// TestSSFSubjectsAndEventsFilter: a stream with subjects gets only the
// events about them (by user, or by tenant); a stream gets only the event
// types it requested; capability and IP bans send nothing. The metrics
// count what was delivered.
func TestSSFSubjectsAndEventsFilter(t *testing.T) {
	e := newSSFEnv(t, envOptions{}, transmitter.Config{}, false)
	key := e.keyWith("rp", authority.ScopeSignals)
	ctx := context.Background()
	bySubject := newReceiver(t, e.http.URL+"/.well-known/jwks.json")
	sub := e.pushStream(t, key, bySubject, nil)
	for _, s := range []map[string]any{
		{"format": "iss_sub", "iss": e.auth.Config().Issuer, "sub": "alice"},
		{"format": "opaque", "id": "t9"},
	} {
		e.must(t, http.StatusOK, "POST", "/ssf/subjects:add", key, map[string]any{"stream_id": sub.StreamID, "subject": s}, nil)
	}
	onlyEnabled := newReceiver(t, e.http.URL+"/.well-known/jwks.json")
	e.pushStream(t, key, onlyEnabled, map[string]any{"events_requested": []string{ssf.EventAccountEnabled}})

	if _, _, err := e.auth.CreateBan(ctx, actor, authority.BanInput{TenantID: "*", Kind: storage.SubjectUser, Value: "mallory", Capabilities: []string{"chat"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.auth.CreateBan(ctx, actor, authority.BanInput{TenantID: "*", Kind: storage.SubjectIP, Value: "198.51.100.7"}); err != nil {
		t.Fatal(err)
	}
	e.ban(t, "bob")            // neither subject
	alice := e.ban(t, "alice") // alice
	tok, err := e.auth.CreateSession(ctx, actor, authority.SessionInput{TenantID: "t9", UserID: "zed"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.auth.RevokeSession(ctx, actor, tok.Session.ID, "t9's"); err != nil { // tenant t9
		t.Fatal(err)
	}
	if _, _, err := e.auth.LiftBan(ctx, actor, alice.ID, "ok"); err != nil { // alice
		t.Fatal(err)
	}
	sets := bySubject.awaitN(t, 3)
	var got []string
	for _, s := range sets {
		typ, _ := eventOf(t, s)
		got = append(got, typ[strings.LastIndex(typ, "/")+1:])
	}
	if strings.Join(got, ",") != "account-disabled,session-revoked,account-enabled" || sets[0].SubjectID.Sub != "alice" ||
		sets[1].SubjectID.Tenant.ID != "t9" || sets[2].SubjectID.Sub != "alice" {
		t.Errorf("the stream with subjects got %v: %s", got, describe(sets))
	}
	if sets := onlyEnabled.awaitN(t, 1); len(sets) != 1 {
		t.Errorf("account-enabled only: %s", describe(sets))
	} else if typ, _ := eventOf(t, sets[0]); typ != ssf.EventAccountEnabled {
		t.Errorf("account-enabled only: got %s", typ)
	}
	// Nothing more is on its way to either: one more event of each kind
	// they take arrives next.
	e.ban(t, "alice")
	if _, _, err := e.auth.LiftBan(ctx, actor, e.ban(t, "carol").ID, "ok"); err != nil {
		t.Fatal(err)
	}
	if s := bySubject.awaitN(t, 4); len(s) != 4 || s[3].SubjectID.Sub != "alice" {
		t.Errorf("after the second ban: %s", describe(s))
	}
	if s := onlyEnabled.awaitN(t, 2); len(s) != 2 || s[1].SubjectID.Sub != "carol" {
		t.Errorf("after carol's lift: %s", describe(s))
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(server.TransmitterCollector(e.tx))
	if got := metricValue(t, reg, "portcullis_ssf_sets_total", map[string]string{"stream": sub.StreamID, "result": "delivered"}); got < 3 {
		t.Errorf("portcullis_ssf_sets_total delivered = %v", got)
	}
	if got := metricValue(t, reg, "portcullis_ssf_stream_status", map[string]string{"stream": sub.StreamID, "status": "enabled"}); got != 1 {
		t.Errorf("portcullis_ssf_stream_status enabled = %v", got)
	}
}

// metricValue is the value of the sample of name with the labels.
func metricValue(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue metrics
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no sample %s%v", name, labels)
	return 0
}
