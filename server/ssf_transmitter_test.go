package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/transmitter"
	"github.com/portcullis-dev/portcullis/server"
	"github.com/portcullis-dev/portcullis/ssf"
)

// TestSSFConfiguration: the configuration document is public and has the
// fields SSF 1.0 §7.1 requires, pointing at this transmitter's endpoints.
func TestSSFConfiguration(t *testing.T) {
	e := newSSFEnv(t, envOptions{}, transmitter.Config{}, false)
	var doc map[string]any
	e.must(t, http.StatusOK, "GET", "/.well-known/ssf-configuration", "", nil, &doc)
	want := map[string]any{
		"spec_version":            "1_0",
		"issuer":                  testIssuer,
		"jwks_uri":                testIssuer + "/.well-known/jwks.json",
		"configuration_endpoint":  testIssuer + "/ssf/streams",
		"status_endpoint":         testIssuer + "/ssf/status",
		"add_subject_endpoint":    testIssuer + "/ssf/subjects:add",
		"remove_subject_endpoint": testIssuer + "/ssf/subjects:remove",
		"verification_endpoint":   testIssuer + "/ssf/verify",
	}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %v, want %v", k, doc[k], v)
		}
	}
	methods, _ := doc["delivery_methods_supported"].([]any)
	if !slices.Contains(methods, any(ssf.DeliveryPush)) || !slices.Contains(methods, any(ssf.DeliveryPoll)) {
		t.Errorf("delivery_methods_supported = %v", doc["delivery_methods_supported"])
	}
}

// TestSSFStreamLifecycle: create, read, update, replace, status, subjects
// and delete, field by field.
func TestSSFStreamLifecycle(t *testing.T) {
	e := newSSFEnv(t, envOptions{}, transmitter.Config{}, false)
	key := e.keyWith("rp", authority.ScopeSignals)
	const other = "https://example.com/unsupported-event"

	created := e.createStream(t, key, map[string]any{
		"events_requested": []string{ssf.EventAccountDisabled, other},
		"description":      "first",
		"stream_id":        "chosen-by-receiver", // transmitter-supplied: ignored
	})
	id := created.StreamID
	if id == "" || id == "chosen-by-receiver" {
		t.Fatalf("stream_id = %q", id)
	}
	if created.Issuer != testIssuer || !slices.Equal([]string(created.Audience), []string{id}) {
		t.Errorf("iss %q aud %v", created.Issuer, created.Audience)
	}
	if !slices.Equal(created.EventsRequested, []string{ssf.EventAccountDisabled, other}) ||
		!slices.Equal(created.EventsDelivered, []string{ssf.EventAccountDisabled}) ||
		!slices.Equal(created.EventsSupported, transmitter.Supported) {
		t.Errorf("events: requested %v delivered %v supported %v", created.EventsRequested, created.EventsDelivered, created.EventsSupported)
	}
	if d := created.Delivery; d == nil || d.Method != ssf.DeliveryPoll || d.EndpointURL != testIssuer+"/ssf/poll/"+id {
		t.Errorf("delivery = %+v, want poll at the transmitter", d)
	}
	if created.Description != "first" || created.MinVerificationInterval <= 0 {
		t.Errorf("description %q min_verification_interval %d", created.Description, created.MinVerificationInterval)
	}

	var got ssf.StreamConfig
	e.must(t, http.StatusOK, "GET", "/ssf/streams?stream_id="+id, key, nil, &got)
	if gj, cj := mustJSON(t, got), mustJSON(t, created); gj != cj {
		t.Errorf("read %s\nwant %s", gj, cj)
	}
	var list []ssf.StreamConfig
	e.must(t, http.StatusOK, "GET", "/ssf/streams", key, nil, &list)
	if len(list) != 1 || list[0].StreamID != id {
		t.Errorf("list = %+v", list)
	}

	// PATCH changes only what it names.
	var patched ssf.StreamConfig
	e.must(t, http.StatusOK, "PATCH", "/ssf/streams", key, map[string]any{"stream_id": id, "description": "second"}, &patched)
	if patched.Description != "second" || !slices.Equal(patched.EventsRequested, created.EventsRequested) || patched.Delivery.Method != ssf.DeliveryPoll {
		t.Errorf("patched = %+v", patched)
	}
	// PUT replaces every receiver-supplied field: no description now.
	var replaced ssf.StreamConfig
	e.must(t, http.StatusOK, "PUT", "/ssf/streams", key, map[string]any{"stream_id": id,
		"events_requested": []string{ssf.EventSessionRevoked, ssf.EventAccountEnabled},
		"delivery":         map[string]any{"method": ssf.DeliveryPush, "endpoint_url": "https://rp.example/ssf"}}, &replaced)
	if replaced.Description != "" || !slices.Equal(replaced.EventsDelivered, []string{ssf.EventSessionRevoked, ssf.EventAccountEnabled}) ||
		replaced.Delivery.Method != ssf.DeliveryPush || replaced.Delivery.EndpointURL != "https://rp.example/ssf" {
		t.Errorf("replaced = %+v", replaced)
	}
	for _, d := range []map[string]any{
		{"method": "urn:example:carrier-pigeon"},
		{"method": ssf.DeliveryPush, "endpoint_url": "http://rp.example/ssf"}, // http only on loopback
		{"method": ssf.DeliveryPush, "endpoint_url": "/relative"},
	} {
		code, body := e.call(t, "PATCH", "/ssf/streams", key, map[string]any{"stream_id": id, "delivery": d})
		if code != http.StatusBadRequest || !strings.Contains(string(body), "INVALID_ARGUMENT") {
			t.Errorf("delivery %v: %d %s", d, code, body)
		}
	}

	// Status.
	var status ssf.StreamStatus
	e.must(t, http.StatusOK, "GET", "/ssf/status?stream_id="+id, key, nil, &status)
	if status.StreamID != id || status.Status != "enabled" {
		t.Errorf("status = %+v", status)
	}
	e.must(t, http.StatusOK, "POST", "/ssf/status", key, map[string]any{"stream_id": id, "status": "paused", "reason": "maintenance"}, &status)
	e.must(t, http.StatusOK, "GET", "/ssf/status?stream_id="+id, key, nil, &status)
	if status.Status != "paused" || status.Reason != "maintenance" {
		t.Errorf("status after pause = %+v", status)
	}
	if code, body := e.call(t, "POST", "/ssf/status", key, map[string]any{"stream_id": id, "status": "asleep"}); code != http.StatusBadRequest {
		t.Errorf("bad status: %d %s", code, body)
	}

	// Subjects.
	alice := map[string]any{"format": "iss_sub", "iss": e.auth.Config().Issuer, "sub": "alice"}
	e.must(t, http.StatusOK, "POST", "/ssf/subjects:add", key, map[string]any{"stream_id": id, "subject": alice, "verified": true}, nil)
	if subs := e.stream(t, id).Subjects; len(subs) != 1 {
		t.Errorf("subjects after add = %v", subs)
	}
	if code, body := e.call(t, "POST", "/ssf/subjects:add", key, map[string]any{"stream_id": id, "subject": map[string]any{"format": "iss_sub"}}); code != http.StatusBadRequest {
		t.Errorf("invalid subject: %d %s", code, body)
	}
	e.must(t, http.StatusNoContent, "POST", "/ssf/subjects:remove", key, map[string]any{"stream_id": id, "subject": alice}, nil)
	if subs := e.stream(t, id).Subjects; len(subs) != 0 {
		t.Errorf("subjects after remove = %v", subs)
	}

	e.must(t, http.StatusNoContent, "DELETE", "/ssf/streams?stream_id="+id, key, nil, nil)
	if code, _ := e.call(t, "GET", "/ssf/streams?stream_id="+id, key, nil); code != http.StatusNotFound {
		t.Errorf("read after delete: %d", code)
	}
}

// TestSSFStreamsPerKey: a key creates at most MaxStreamsPerKey streams
// (429 beyond); another key is not counted against it.
func TestSSFStreamsPerKey(t *testing.T) {
	e := newSSFEnv(t, envOptions{}, transmitter.Config{}, false)
	key := e.keyWith("rp", authority.ScopeSignals)
	for range transmitter.MaxStreamsPerKey {
		e.createStream(t, key, map[string]any{})
	}
	code, body := e.call(t, "POST", "/ssf/streams", key, map[string]any{})
	if code != http.StatusTooManyRequests || !strings.Contains(string(body), "RESOURCE_EXHAUSTED") {
		t.Errorf("one stream too many: %d %s", code, body)
	}
	e.createStream(t, e.keyWith("rp2", authority.ScopeSignals), map[string]any{})
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSSFAuth: no key 401, a key without scope signals 403, another key's
// stream 404 (an admin key manages it).
func TestSSFAuth(t *testing.T) {
	e := newSSFEnv(t, envOptions{}, transmitter.Config{}, false)
	owner := e.keyWith("rp-a", authority.ScopeSignals)
	other := e.keyWith("rp-b", authority.ScopeSignals)
	reader := e.keyWith("reader", authority.ScopeBansRead)
	id := e.createStream(t, owner, map[string]any{}).StreamID

	code, body := e.call(t, "GET", "/ssf/streams?stream_id="+id, "", nil)
	if code != http.StatusUnauthorized || !strings.Contains(string(body), "API_KEY_INVALID") {
		t.Errorf("no key: %d %s", code, body)
	}
	if code, body := e.call(t, "GET", "/ssf/streams?stream_id="+id, "pk_nonsense", nil); code != http.StatusUnauthorized {
		t.Errorf("unknown key: %d %s", code, body)
	}
	code, body = e.call(t, "GET", "/ssf/streams?stream_id="+id, reader, nil)
	if code != http.StatusForbidden || !strings.Contains(string(body), "PERMISSION_DENIED") {
		t.Errorf("wrong scope: %d %s", code, body)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/ssf/streams?stream_id=" + id}, {"DELETE", "/ssf/streams?stream_id=" + id},
		{"GET", "/ssf/status?stream_id=" + id}, {"POST", "/ssf/poll/" + id},
	} {
		code, body := e.call(t, c.method, c.path, other, map[string]any{"returnImmediately": true})
		if code != http.StatusNotFound || !strings.Contains(string(body), "NOT_FOUND") {
			t.Errorf("another key's stream, %s %s: %d %s", c.method, c.path, code, body)
		}
	}
	var list []ssf.StreamConfig
	e.must(t, http.StatusOK, "GET", "/ssf/streams", other, nil, &list)
	if len(list) != 0 {
		t.Errorf("another key lists %d streams", len(list))
	}
	e.must(t, http.StatusOK, "GET", "/ssf/streams?stream_id="+id, e.adminKey, nil, nil)
}

// TestSSFFailedAuthLimited: an address whose credentials keep failing gets
// 429 (as over gRPC), while a valid key from it still works; the refusals
// are audited.
func TestSSFFailedAuthLimited(t *testing.T) {
	lim := server.DefaultLimits
	lim.FailedAuthPerSecond, lim.FailedAuthBurst = 0.001, 3
	e := newSSFEnv(t, envOptions{server: server.Options{Limits: lim}}, transmitter.Config{}, false)
	var codes []int
	for range 5 {
		code, _ := e.call(t, "GET", "/ssf/streams", "pcl_wrong", nil)
		codes = append(codes, code)
	}
	if !slices.Equal(codes, []int{401, 401, 401, 429, 429}) {
		t.Errorf("statuses of failed authentications: %v", codes)
	}
	e.must(t, http.StatusOK, "GET", "/ssf/streams", e.keyWith("rp", authority.ScopeSignals), nil, nil)
	recs, _, err := e.auth.ListAuditRecords(context.Background(), authority.AuditFilter{Action: "call.denied"}, authority.Page{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 || recs[0].Channel != "ssf" || recs[0].Details["method"] != "GET /ssf/streams" {
		t.Errorf("denied-call audit: %+v", recs)
	}
}

// TestSSFPushEvents: bans, their revocations, revocations, lifts and
// expiries reach a push receiver as RISC and CAEP SETs, in order, each
// verified against the authority's JWKS.
func TestSSFPushEvents(t *testing.T) {
	e := newSSFEnv(t, envOptions{}, transmitter.Config{}, false)
	r := newReceiver(t, e.http.URL+"/.well-known/jwks.json")
	key := e.keyWith("rp", authority.ScopeSignals)
	e.pushStream(t, key, r, nil)
	ctx := context.Background()

	// A ban in every tenant: account-disabled about the user, with the reason.
	banA, _, err := e.auth.CreateBan(ctx, actor, authority.BanInput{TenantID: "*", Kind: storage.SubjectUser, Value: "alice", Reason: "fraud"})
	if err != nil {
		t.Fatal(err)
	}
	sets := r.awaitN(t, 1)
	typ, ev := eventOf(t, sets[0])
	if typ != ssf.EventAccountDisabled || ev["reason"] != "fraud" {
		t.Errorf("first SET: %s %v", typ, ev)
	}
	if got, want := subjectJSON(t, sets[0].SubjectID), (&ssf.Subject{Format: "iss_sub", Iss: e.auth.Config().Issuer, Sub: "alice"}).Key(); got != want {
		t.Errorf("sub_id = %s, want %s", got, want)
	}

	// A full ban in one tenant revokes bob's two sessions: account-disabled
	// (with the tenant), then a session-revoked for each.
	var bobSessions []string
	for range 2 {
		tok, err := e.auth.CreateSession(ctx, actor, authority.SessionInput{TenantID: "t1", UserID: "bob"})
		if err != nil {
			t.Fatal(err)
		}
		bobSessions = append(bobSessions, tok.Session.ID)
	}
	if _, _, err := e.auth.CreateBan(ctx, actor, authority.BanInput{TenantID: "t1", Kind: storage.SubjectUser, Value: "bob", Reason: "abuse"}); err != nil {
		t.Fatal(err)
	}
	sets = r.awaitN(t, 4)
	if typ, _ := eventOf(t, sets[1]); typ != ssf.EventAccountDisabled {
		t.Errorf("second SET %s", typ)
	}
	if s := sets[1].SubjectID; s == nil || s.User == nil || s.User.Sub != "bob" || s.Tenant == nil || s.Tenant.ID != "t1" {
		t.Errorf("bob's ban sub_id = %s", subjectJSON(t, s))
	}
	var revoked []string
	for _, s := range sets[2:4] {
		if typ, _ := eventOf(t, s); typ != ssf.EventSessionRevoked || s.SubjectID == nil || s.SubjectID.Session == nil {
			t.Fatalf("SET %s: %s %s", s.JTI, typ, subjectJSON(t, s.SubjectID))
		}
		revoked = append(revoked, s.SubjectID.Session.ID)
	}
	slices.Sort(revoked)
	slices.Sort(bobSessions)
	if !slices.Equal(revoked, bobSessions) {
		t.Errorf("revoked sessions %v, want %v", revoked, bobSessions)
	}

	// A revocation, then the lift of alice's ban.
	tok, err := e.auth.CreateSession(ctx, actor, authority.SessionInput{TenantID: "t2", UserID: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.auth.RevokeSession(ctx, actor, tok.Session.ID, "logout everywhere"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.auth.LiftBan(ctx, actor, banA.ID, "appeal"); err != nil {
		t.Fatal(err)
	}
	sets = r.awaitN(t, 6)
	if typ, ev := eventOf(t, sets[4]); typ != ssf.EventSessionRevoked || sets[4].SubjectID.Session.ID != tok.Session.ID ||
		sets[4].SubjectID.User.Sub != "carol" || !strings.Contains(mustJSON(t, ev), "logout everywhere") {
		t.Errorf("revocation SET: %s %s %v", typ, subjectJSON(t, sets[4].SubjectID), ev)
	}
	if typ, _ := eventOf(t, sets[5]); typ != ssf.EventAccountEnabled || sets[5].SubjectID.Sub != "alice" {
		t.Errorf("lift SET: %s %s", typ, subjectJSON(t, sets[5].SubjectID))
	}

	// Every jti is distinct and they come in the log's order.
	var jtis []string
	for _, s := range sets {
		jtis = append(jtis, s.JTI)
	}
	if !slices.IsSortedFunc(sets, func(a, b ssf.SET) int { return cmpRev(t, a.JTI, b.JTI) }) {
		t.Errorf("SETs out of order: %v", jtis)
	}
	if len(slices.Compact(slices.Clone(jtis))) != len(jtis) {
		t.Errorf("duplicate jti: %v", jtis)
	}
}

// cmpRev orders two jti values of a stream by revision, then index.
func cmpRev(t testing.TB, a, b string) int {
	t.Helper()
	ra, ia := jtiParts(t, a)
	rb, ib := jtiParts(t, b)
	if ra != rb {
		return int(ra - rb)
	}
	return ia - ib
}

func jtiParts(t testing.TB, jti string) (int64, int) {
	t.Helper()
	parts := strings.Split(jti, "-")
	if len(parts) < 3 {
		t.Fatalf("jti %q is not stream-revision-index", jti)
	}
	var rev int64
	var idx int
	if err := json.Unmarshal([]byte(parts[len(parts)-2]), &rev); err != nil {
		t.Fatalf("jti %q: %v", jti, err)
	}
	if err := json.Unmarshal([]byte(parts[len(parts)-1]), &idx); err != nil {
		t.Fatalf("jti %q: %v", jti, err)
	}
	return rev, idx
}

// TestSSFBanExpiry: a temporary ban that runs out (the injected clock
// passes its end) sends account-enabled: the transmitter's announcer,
// woken by the next ban event, has the authority announce it.
func TestSSFBanExpiry(t *testing.T) {
	e := newSSFEnv(t, envOptions{}, transmitter.Config{}, false)
	r := newReceiver(t, e.http.URL+"/.well-known/jwks.json")
	e.pushStream(t, e.keyWith("rp", authority.ScopeSignals), r, nil)
	ctx := context.Background()
	if _, _, err := e.auth.CreateBan(ctx, actor, authority.BanInput{TenantID: "*", Kind: storage.SubjectUser, Value: "dave", Duration: "1h", Reason: "cool off"}); err != nil {
		t.Fatal(err)
	}
	r.awaitN(t, 1)
	e.clock.Advance(2 * time.Hour)
	e.ban(t, "erin")
	sets := r.await(t, "dave's account-enabled", func(sets []ssf.SET) bool {
		for _, s := range sets {
			if _, ok := s.Events[ssf.EventAccountEnabled]; ok {
				return true
			}
		}
		return false
	})
	for _, s := range sets {
		if _, ok := s.Events[ssf.EventAccountEnabled]; ok && s.SubjectID.Sub != "dave" {
			t.Errorf("account-enabled for %s", s.SubjectID.Sub)
		}
	}
	if sets[0].SubjectID.Sub != "dave" || sets[0].Events[ssf.EventAccountDisabled] == nil {
		t.Errorf("first SET: %s", describe(sets))
	}
}

// TestSSFVerification: a verification request sends a verification event
// with the state; another within min_verification_interval is refused;
// an RS256 stream's SETs verify with the RSA key of the JWKS.
func TestSSFVerification(t *testing.T) {
	e := newSSFEnv(t, envOptions{}, transmitter.Config{}, false)
	r := newReceiver(t, e.http.URL+"/.well-known/jwks.json")
	key := e.keyWith("rp", authority.ScopeSignals)
	st := e.pushStream(t, key, r, map[string]any{"signing_alg": "RS256"})
	e.must(t, http.StatusNoContent, "POST", "/ssf/verify", key, map[string]any{"stream_id": st.StreamID, "state": "VGhpcyBpcyBhbiBleGFtcGxlIHN0YXRlIHZhbHVlLgo="}, nil)
	code, body := e.call(t, "POST", "/ssf/verify", key, map[string]any{"stream_id": st.StreamID, "state": "again"})
	if code != http.StatusTooManyRequests {
		t.Errorf("second verification at once: %d %s", code, body)
	}
	sets := r.awaitN(t, 1)
	typ, ev := eventOf(t, sets[0])
	if typ != ssf.EventVerification || ev["state"] != "VGhpcyBpcyBhbiBleGFtcGxlIHN0YXRlIHZhbHVlLgo=" {
		t.Errorf("verification SET: %s %v", typ, ev)
	}
	if s := sets[0].SubjectID; s == nil || s.Format != "opaque" || s.ID != st.StreamID {
		t.Errorf("verification sub_id = %s", subjectJSON(t, s))
	}
	if alg := jwtAlg(t, r.raws[0]); alg != "RS256" {
		t.Errorf("alg = %s, want RS256", alg)
	}
	e.clock.Advance(time.Minute)
	e.must(t, http.StatusNoContent, "POST", "/ssf/verify", key, map[string]any{"stream_id": st.StreamID, "state": "later"}, nil)
	r.awaitN(t, 2)
}

// jwtAlg is the alg of a compact JWS's header.
func jwtAlg(t testing.TB, raw string) string {
	alg, _ := jwtHeader(t, raw)
	return alg
}

// jwtHeader is the alg and kid of a compact JWS's header.
func jwtHeader(t testing.TB, raw string) (alg, kid string) {
	t.Helper()
	seg, _, _ := strings.Cut(raw, ".")
	b, err := base64URL(seg)
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Alg, Kid string }
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.Alg, h.Kid
}

// TestSSFRotateRS256Key: KeyService.RotateKey with algorithm RS256
// retires the SET key of RS256 streams; the next SETs are signed with the
// new one, which a receiver finds in the JWKS beside the retired one; an
// hour later the JWKS publishes only the new one, and the token key was
// never touched.
func TestSSFRotateRS256Key(t *testing.T) {
	e := newSSFEnv(t, envOptions{}, transmitter.Config{}, false)
	r := newReceiver(t, e.http.URL+"/.well-known/jwks.json")
	key := e.keyWith("rp", authority.ScopeSignals)
	e.pushStream(t, key, r, map[string]any{"signing_alg": "RS256"})
	e.ban(t, "u1")
	r.awaitN(t, 1)
	_, first := jwtHeader(t, r.raws[0])

	tokenKey := func() string {
		t.Helper()
		resp, err := e.keys.ListKeys(e.admin(), &pb.ListKeysRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetKeys()[0].GetKeyId()
	}
	token := tokenKey()
	rot, err := e.keys.RotateKey(e.admin(), &pb.RotateKeyRequest{Reason: "scheduled", Algorithm: "RS256"})
	if err != nil {
		t.Fatal(err)
	}
	if rot.GetKey().GetAlgorithm() != "RS256" || rot.GetRetiredKey().GetKeyId() != first {
		t.Fatalf("rotation: %v, want a new RS256 key retiring %s", rot, first)
	}
	e.ban(t, "u2")
	sets := r.awaitN(t, 2)
	if alg, kid := jwtHeader(t, r.raws[1]); alg != "RS256" || kid != rot.GetKey().GetKeyId() || sets[1].SubjectID.Sub != "u2" {
		t.Fatalf("the SET after the rotation: %s %s, want RS256 with %s", alg, kid, rot.GetKey().GetKeyId())
	}
	published := func() map[string]bool {
		t.Helper()
		keys, err := ssf.ParseJWKS(fetchJWKS(t, e.env))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, k := range keys {
			out[k.KeyID] = true
		}
		return out
	}
	if got := published(); !got[first] || !got[rot.GetKey().GetKeyId()] {
		t.Fatalf("JWKS right after the rotation: %v, want both RS256 keys", got)
	}
	e.clock.Advance(time.Hour)
	if got := published(); got[first] || !got[rot.GetKey().GetKeyId()] || !got[token] {
		t.Fatalf("JWKS an hour later: %v, want the new RS256 key and the token key, not %s", got, first)
	}
	if tokenKey() != token {
		t.Fatal("rotating the RS256 key rotated the token key")
	}
	if _, err := e.keys.RotateKey(e.admin(), &pb.RotateKeyRequest{Algorithm: "HS256"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("RotateKey(HS256): %v, want InvalidArgument", err)
	}
}
