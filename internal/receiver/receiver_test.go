package receiver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/authoritytest/testidp"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/receiver/txfake"
	"github.com/portcullis-dev/portcullis/ssf"
)

const aud = "https://receiver.example"

// env is a real authority (bbolt) serving HTTP on a loopback URL that is
// its --public-url, a mirror following it, and a fake transmitter added
// as push or poll.
type env struct {
	t     testing.TB
	ctx   context.Context
	a     *authoritytest.Authority
	admin *client.Client
	m     *client.Mirror
	tx    *txfake.Transmitter
	id    string // the transmitter's ID here
	pub   string // the authority's HTTP URL
	n     atomic.Int64
}

func newEnv(t testing.TB, delivery string, opts ...func(*authoritytest.Options)) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // hang guard
	t.Cleanup(cancel)
	var handler atomic.Value
	pub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.Load().(http.Handler).ServeHTTP(w, r)
	}))
	t.Cleanup(pub.Close)
	o := authoritytest.Options{PublicURL: pub.URL}
	for _, f := range opts {
		f(&o)
	}
	a := authoritytest.Start(t, o)
	handler.Store(a.HTTPHandler())
	admin := a.Dial()
	watcher := a.Dial(client.WithAPIKey(a.NewAPIKey("svc", "events:watch")))
	m, stop, err := client.StartMirror(ctx, watcher, client.MirrorOptions{Clock: a.Clock().Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	tx := txfake.Start(t)
	resp, err := admin.Signals.CreateTransmitter(ctx, &pb.CreateTransmitterRequest{
		ConfigUrl: tx.URL, Audience: aud, Delivery: delivery, BearerToken: txfake.Token, TenantId: "acme",
		BanDuration: durationpb.New(time.Hour), Description: "test transmitter",
	})
	if err != nil {
		t.Fatalf("CreateTransmitter: %v", err)
	}
	return &env{t: t, ctx: ctx, a: a, admin: admin, m: m, tx: tx, id: resp.GetTransmitter().GetTransmitterId(), pub: pub.URL}
}

func (e *env) jti() string { return fmt.Sprintf("jti-%d", e.n.Add(1)) }

// signed returns a SET of the fake about user, issued now by the
// authority's clock.
func (e *env) signed(jti, event string, sub *ssf.Subject, payload any) string {
	return e.tx.Sign(e.tx.SET(aud, jti, e.a.Clock().Now(), sub, event, payload))
}

func (e *env) push(token string) (int, map[string]any) {
	e.t.Helper()
	code, body, err := e.tx.Push(e.ctx, token, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return code, body
}

func (e *env) mustApply(token string) {
	e.t.Helper()
	if code, body := e.push(token); code != http.StatusAccepted {
		e.t.Fatalf("push: %d %v", code, body)
	}
}

// session creates a session of user in tenant acme and returns its access
// token.
func (e *env) session(user string) (id, access string) {
	e.t.Helper()
	s, err := e.admin.Sessions.CreateSession(e.ctx, &pb.CreateSessionRequest{TenantId: "acme", UserId: user})
	if err != nil {
		e.t.Fatal(err)
	}
	return s.GetSession().GetSessionId(), s.GetAccessToken()
}

// check is the mirror's verdict on tok once it has every change so far.
func (e *env) check(tok string) error {
	e.t.Helper()
	if err := e.m.WaitRevision(e.ctx, e.a.Revision()); err != nil {
		e.t.Fatal(err)
	}
	_, err := e.m.Check(e.ctx, tok, client.CheckInput{})
	return err
}

func (e *env) bans(user string, state pb.BanState) []*pb.Ban {
	e.t.Helper()
	resp, err := e.admin.Bans.ListBans(e.ctx, &pb.ListBansRequest{TenantId: "acme", State: state, PageSize: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*pb.Ban
	for _, b := range resp.GetBans() {
		if b.GetSubject().GetUserId() == user {
			out = append(out, b)
		}
	}
	return out
}

func (e *env) applyAudits() []*pb.AuditRecord {
	e.t.Helper()
	resp, err := e.admin.Audit.ListAuditRecords(e.ctx, &pb.ListAuditRecordsRequest{Action: "signal.apply", PageSize: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.GetRecords()
}

func user(u string) *ssf.Subject {
	return &ssf.Subject{Format: "iss_sub", Iss: "https://idp.example", Sub: u}
}

// TestPushBans: RISC account-disabled, credential-compromise and
// account-purged ban the user (a mirror refuses them) with a reason and a
// policy naming the signal and the configured duration; account-enabled
// lifts only the receiver's bans, an operator's ban on the same user
// stays. Each applied SET has its signal.apply audit record with its jti
// and the transmitter.
func TestPushBans(t *testing.T) {
	e := newEnv(t, "push")
	s := e.tx.Stream()
	if s == nil || s.Delivery.Method != ssf.DeliveryPush || !strings.HasSuffix(s.Delivery.EndpointURL, "/ssf/receive/"+e.id) ||
		!strings.HasPrefix(s.Delivery.AuthorizationHeader, "Bearer ") || len(s.EventsRequested) != 5 {
		t.Fatalf("stream created at the transmitter: %+v", s)
	}
	_, alice := e.session("alice")
	if err := e.check(alice); err != nil {
		t.Fatalf("before: %v", err)
	}
	j1 := e.jti()
	e.mustApply(e.signed(j1, ssf.EventAccountDisabled, user("alice"), ssf.AccountDisabled{Reason: "hijacking"}))
	if err := e.check(alice); !errors.Is(err, client.ErrUserBanned) {
		t.Fatalf("after account-disabled: %v", err)
	}
	// The same signal again (another jti: a transmitter's retry, another
	// replica's): the ban in force is not made twice.
	e.mustApply(e.signed(e.jti(), ssf.EventAccountDisabled, user("alice"), ssf.AccountDisabled{}))
	bans := e.bans("alice", pb.BanState_BAN_STATE_ACTIVE)
	if len(bans) != 1 {
		t.Fatalf("bans: %v", bans)
	}
	b := bans[0]
	if !strings.Contains(b.GetReason(), "account-disabled") || !strings.Contains(b.GetReason(), "hijacking") ||
		b.GetPolicy() != "ssf:account-disabled" || b.GetCreatedBy() != "ssf:"+e.id ||
		!b.GetExpireTime().AsTime().Equal(e.a.Clock().Now().Add(time.Hour)) {
		t.Fatalf("ban: %v", b)
	}
	// A reason longer than the authority takes, with control characters:
	// the ban is made, its reason cleaned and cut.
	e.mustApply(e.signed(e.jti(), ssf.EventAccountDisabled, user("bea"), ssf.AccountDisabled{Reason: "line\nbreak\u202e" + strings.Repeat("é", 1500)}))
	if bea := e.bans("bea", pb.BanState_BAN_STATE_ACTIVE); len(bea) != 1 || len(bea[0].GetReason()) > 1024 ||
		!strings.Contains(bea[0].GetReason(), "line\ufffdbreak\ufffd") {
		t.Fatalf("bea's ban: %v", bea)
	}
	for _, c := range []struct{ user, event string }{{"carol", ssf.EventCredentialCompromise}, {"dave", ssf.EventAccountPurged}} {
		_, tok := e.session(c.user)
		e.mustApply(e.signed(e.jti(), c.event, user(c.user), map[string]any{"credential_type": "password"}))
		if err := e.check(tok); !errors.Is(err, client.ErrUserBanned) {
			t.Fatalf("%s after %s: %v", c.user, c.event, err)
		}
	}

	// An operator's ban on alice besides the signal's.
	op, err := e.admin.Bans.CreateBan(e.ctx, &pb.CreateBanRequest{TenantId: "acme",
		Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "alice"}}, Reason: "operator"})
	if err != nil {
		t.Fatal(err)
	}
	e.mustApply(e.signed(e.jti(), ssf.EventAccountEnabled, user("alice"), ssf.AccountEnabled{}))
	active := e.bans("alice", pb.BanState_BAN_STATE_ACTIVE)
	if len(active) != 1 || active[0].GetBanId() != op.GetBan().GetBanId() {
		t.Fatalf("after account-enabled, active bans: %v", active)
	}
	if lifted := e.bans("alice", pb.BanState_BAN_STATE_LIFTED); len(lifted) != 1 || lifted[0].GetBanId() != b.GetBanId() {
		t.Fatalf("after account-enabled, lifted: %v", lifted)
	}

	audits := e.applyAudits()
	if len(audits) != 6 {
		t.Fatalf("signal.apply records: %d", len(audits))
	}
	found := false
	for _, r := range audits {
		d := r.GetDetails()
		if d["transmitter"] != e.id || r.GetChannel() != "ssf" || r.GetActor() != "ssf:"+e.id {
			t.Fatalf("audit: %v", r)
		}
		found = found || (d["jti"] == j1 && d["event"] == ssf.EventAccountDisabled && r.GetSubject() == "user:alice")
	}
	if !found {
		t.Fatalf("no audit record of %s: %v", j1, audits)
	}
}

// TestPushSessionRevoked: CAEP session-revoked naming a session of a
// registered issuer revokes that external session (a mirror refuses its
// tokens); without a session it revokes the user's sessions here.
func TestPushSessionRevoked(t *testing.T) {
	e := newEnv(t, "push")
	idp := testidp.Start(t)
	if _, err := e.admin.Issuers.CreateIssuer(e.ctx, &pb.CreateIssuerRequest{Issuer: &pb.Issuer{
		Issuer: idp.URL, TenantId: "acme", Audiences: []string{testidp.ClientID}}}); err != nil {
		t.Fatal(err)
	}
	now := e.a.Clock().Now()
	idTok := idp.Sign(jwt.MapClaims{"iss": idp.URL, "sub": "erin", "aud": testidp.ClientID, "sid": "idp-sess-1",
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()})
	if err := e.check(idTok); err != nil {
		t.Fatalf("external token before: %v", err)
	}
	complexSub := &ssf.Subject{Format: "complex", User: &ssf.Subject{Format: "iss_sub", Iss: idp.URL, Sub: "erin"},
		Session: &ssf.Subject{Format: "opaque", ID: "idp-sess-1"}}
	e.mustApply(e.signed(e.jti(), ssf.EventSessionRevoked, complexSub, ssf.SessionRevoked{}))
	if err := e.check(idTok); !errors.Is(err, client.ErrSessionRevoked) {
		t.Fatalf("external token after session-revoked: %v", err)
	}

	// The session alone, in its issuer's namespace (how internal/transmitter
	// sends a revoked session of an external issuer).
	idTok2 := idp.Sign(jwt.MapClaims{"iss": idp.URL, "sub": "erin", "aud": testidp.ClientID, "sid": "idp-sess-2",
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()})
	sessionOnly := func(iss, sid string) *ssf.Subject {
		return &ssf.Subject{Format: "complex", Session: &ssf.Subject{Format: "iss_sub", Iss: iss, Sub: sid}}
	}
	e.mustApply(e.signed(e.jti(), ssf.EventSessionRevoked, sessionOnly(idp.URL, "idp-sess-2"), ssf.SessionRevoked{}))
	if err := e.check(idTok2); !errors.Is(err, client.ErrSessionRevoked) {
		t.Fatalf("external token after a session-only session-revoked: %v", err)
	}
	// A session of an issuer not registered here, with no user: accepted,
	// nothing to revoke, not audited as applied.
	before := len(e.applyAudits())
	e.mustApply(e.signed(e.jti(), ssf.EventSessionRevoked, sessionOnly("https://elsewhere.example", "s1"), ssf.SessionRevoked{}))
	if n := len(e.applyAudits()); n != before {
		t.Fatalf("signal.apply records after a session of nowhere: %d, want %d", n, before)
	}
	// A ban needs a user.
	if code, body := e.push(e.signed(e.jti(), ssf.EventAccountDisabled, sessionOnly(idp.URL, "idp-sess-3"), ssf.AccountDisabled{})); code != 400 || body["reason"] != "SET_INVALID" {
		t.Fatalf("account-disabled of a session: %d %v", code, body)
	}

	sid, tok := e.session("frank")
	e.mustApply(e.signed(e.jti(), ssf.EventSessionRevoked, user("frank"), ssf.SessionRevoked{}))
	if err := e.check(tok); !errors.Is(err, client.ErrSessionRevoked) {
		t.Fatalf("own session after session-revoked: %v", err)
	}
	s, err := e.admin.Sessions.GetSession(e.ctx, &pb.GetSessionRequest{SessionId: sid})
	if err != nil || s.GetSession().GetRevokedBy() != "ssf:"+e.id {
		t.Fatalf("session: %v %v", s, err)
	}
}

// TestPushRefused: each bad SET is refused with its RFC 8935 err code and
// reason, and applies nothing.
func TestPushRefused(t *testing.T) {
	e := newEnv(t, "push")
	other := txfake.Start(t) // its keys are not the transmitter's
	now := e.a.Clock().Now()
	disable := func(jti string) ssf.SET {
		return e.tx.SET(aud, jti, now, user("gina"), ssf.EventAccountDisabled, ssf.AccountDisabled{})
	}
	replayed := e.jti()
	e.mustApply(e.signed(replayed, ssf.EventSessionRevoked, user("nobody"), ssf.SessionRevoked{}))
	unsigned := func() string {
		parts := strings.Split(e.tx.Sign(disable(e.jti())), ".")
		return "eyJhbGciOiJub25lIiwidHlwIjoic2VjZXZlbnQrand0In0." + parts[1] + "."
	}()
	otherKey := other.Sign(func() ssf.SET { s := disable(e.jti()); s.Issuer = e.tx.URL; return s }())
	wrongAud := e.tx.Sign(func() ssf.SET { s := disable(e.jti()); s.Audience = []string{"someone-else"}; return s }())
	old := e.tx.Sign(func() ssf.SET { s := disable(e.jti()); s.IssuedAt = now.Add(-2 * time.Hour); return s }())
	future := e.tx.Sign(func() ssf.SET { s := disable(e.jti()); s.IssuedAt = now.Add(time.Hour); return s }())
	wrongIss := e.tx.Sign(func() ssf.SET { s := disable(e.jti()); s.Issuer = other.URL; return s }())
	before := len(e.applyAudits())
	for _, c := range []struct {
		name, token, auth string
		code              int
		err, reason       string
	}{
		{"unsigned", unsigned, "", 400, "invalid_request", "SET_INVALID"},
		{"other key", otherKey, "", 400, "invalid_key", "SET_KEY_INVALID"},
		{"other issuer", wrongIss, "", 400, "invalid_issuer", "SET_ISSUER_INVALID"},
		{"replayed jti", e.signed(replayed, ssf.EventAccountDisabled, user("gina"), ssf.AccountDisabled{}), "", 400, "invalid_request", "SET_REPLAYED"},
		{"wrong aud", wrongAud, "", 400, "invalid_audience", "SET_AUDIENCE_INVALID"},
		{"iat 2h old", old, "", 400, "invalid_request", "SET_INVALID"},
		{"iat 1h ahead", future, "", 400, "invalid_request", "SET_INVALID"},
		{"malformed", "not.a.jwt", "", 400, "invalid_request", "SET_INVALID"},
		{"wrong authorization", e.tx.Sign(disable(e.jti())), "Bearer wrong", 401, "", "API_KEY_INVALID"},
	} {
		code, body, err := e.tx.Push(e.ctx, c.token, c.auth)
		if err != nil {
			t.Fatal(err)
		}
		if code != c.code || body["reason"] != c.reason || (c.err != "" && body["err"] != c.err) {
			t.Errorf("%s: %d %v, want %d err %q reason %s", c.name, code, body, c.code, c.err, c.reason)
		}
	}
	// The wrong Authorization is audited as a denied call.
	denied, err := e.admin.Audit.ListAuditRecords(e.ctx, &pb.ListAuditRecordsRequest{Action: "call.denied"})
	if err != nil {
		t.Fatal(err)
	}
	if r := denied.GetRecords(); len(r) != 1 || r[0].GetDetails()["method"] != "POST /ssf/receive/"+e.id || r[0].GetChannel() != "ssf" {
		t.Fatalf("denied-call audit: %v", r)
	}
	// RFC 8935 §2: the body is application/secevent+jwt.
	st := e.tx.Stream()
	req, _ := http.NewRequestWithContext(e.ctx, http.MethodPost, st.Delivery.EndpointURL, strings.NewReader(e.tx.Sign(disable(e.jti()))))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Authorization", st.Delivery.AuthorizationHeader)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"err":"invalid_request"`) {
		t.Fatalf("text/plain push: %d %s", resp.StatusCode, body)
	}
	if bans := e.bans("gina", pb.BanState_BAN_STATE_UNSPECIFIED); len(bans) != 0 {
		t.Fatalf("a refused SET banned: %v", bans)
	}
	if n := len(e.applyAudits()); n != before {
		t.Fatalf("signal.apply records: %d, want %d", n, before)
	}
	resp, err = http.Get(e.pub + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		"portcullis_signals_received_total 9", // the applied one, and 8 refused after the Authorization check
		"portcullis_signals_applied_total 1",
		"portcullis_signals_duplicates_total 1",
		`portcullis_signals_refused_total{reason="SET_INVALID"} 4`,
		`portcullis_signals_refused_total{reason="SET_KEY_INVALID"} 1`,
		`portcullis_signals_refused_total{reason="SET_ISSUER_INVALID"} 1`,
		`portcullis_signals_refused_total{reason="SET_AUDIENCE_INVALID"} 1`,
		`portcullis_signals_refused_total{reason="PUSH_UNAUTHORIZED"} 1`,
	} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestKeyRotation: a SET signed with a key the transmitter published after
// it was added is accepted (the receiver refetches the JWKS on the unknown
// kid); deleting the transmitter deletes our stream there, and its SETs
// are refused.
func TestKeyRotationAndDelete(t *testing.T) {
	e := newEnv(t, "push")
	e.tx.RotateKey()
	_, tok := e.session("hank")
	e.mustApply(e.signed(e.jti(), ssf.EventAccountDisabled, user("hank"), ssf.AccountDisabled{}))
	if err := e.check(tok); !errors.Is(err, client.ErrUserBanned) {
		t.Fatalf("after a SET with the new key: %v", err)
	}
	got, err := e.admin.Signals.GetTransmitter(e.ctx, &pb.GetTransmitterRequest{TransmitterId: e.id})
	if err != nil || len(got.GetTransmitter().GetKeyIds()) != 2 {
		t.Fatalf("keys after the refetch: %v %v", got, err)
	}
	for _, bad := range []string{"", "a\x00b", strings.Repeat("x", 65)} {
		if _, err := e.admin.Signals.GetTransmitter(e.ctx, &pb.GetTransmitterRequest{TransmitterId: bad}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("GetTransmitter(%q): %v", bad, err)
		}
	}
	if _, err := e.admin.Signals.GetTransmitter(e.ctx, &pb.GetTransmitterRequest{TransmitterId: "stx_none"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetTransmitter of an unknown ID: %v", err)
	}
	stream := e.tx.Stream()
	if _, err := e.admin.Signals.DeleteTransmitter(e.ctx, &pb.DeleteTransmitterRequest{TransmitterId: e.id}); err != nil {
		t.Fatal(err)
	}
	if d := e.tx.Deleted(); len(d) != 1 || d[0] != stream.StreamID {
		t.Fatalf("streams deleted at the transmitter: %v", d)
	}
	// The stream's last push, after the delete: the transmitter is unknown.
	s := e.tx.SET(aud, e.jti(), e.a.Clock().Now(), user("hank"), ssf.EventAccountEnabled, ssf.AccountEnabled{})
	req, _ := http.NewRequestWithContext(e.ctx, http.MethodPost, stream.Delivery.EndpointURL, strings.NewReader(e.tx.Sign(s)))
	req.Header.Set("Content-Type", ssf.ContentType)
	req.Header.Set("Authorization", stream.Delivery.AuthorizationHeader)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("push after delete: %d", resp.StatusCode)
	}
	if active := e.bans("hank", pb.BanState_BAN_STATE_ACTIVE); len(active) != 1 {
		t.Fatalf("a push after the delete lifted a ban: %v", active)
	}
}

// TestUnknownKidRefetch: a SET naming a kid the transmitter does not
// publish refetches its JWKS, at most once a minute (by the authority's
// clock), and is refused with invalid_key.
func TestUnknownKidRefetch(t *testing.T) {
	e := newEnv(t, "push")
	stranger := txfake.Start(t)
	stranger.RotateKey() // "k2": a kid the transmitter does not have
	forged := func() string {
		return stranger.Sign(e.tx.SET(aud, e.jti(), e.a.Clock().Now(), user("ivy"), ssf.EventAccountDisabled, ssf.AccountDisabled{}))
	}
	fetches := e.tx.JWKSFetches()
	for i, want := range []int{fetches + 1, fetches + 1} {
		if code, body := e.push(forged()); code != 400 || body["err"] != "invalid_key" {
			t.Fatalf("push %d: %d %v", i, code, body)
		}
		if got := e.tx.JWKSFetches(); got != want {
			t.Fatalf("after push %d: %d JWKS fetches, want %d", i, got, want)
		}
	}
	e.a.Clock().Advance(61 * time.Second)
	if code, _ := e.push(forged()); code != 400 || e.tx.JWKSFetches() != fetches+2 {
		t.Fatalf("a minute later: %d, %d JWKS fetches, want %d", code, e.tx.JWKSFetches(), fetches+2)
	}
}

// TestPoll: a poll transmitter's SETs are applied in order and
// acknowledged in the next poll; a refused one is reported in setErrs.
func TestPoll(t *testing.T) {
	e := newEnv(t, "poll")
	if s := e.tx.Stream(); s == nil || s.Delivery.Method != ssf.DeliveryPoll {
		t.Fatalf("stream: %+v", s)
	}
	e.tx.Enqueue("s-9", e.signed("s-9", ssf.EventAccountDisabled, user("ivan"), ssf.AccountDisabled{}))
	e.tx.Enqueue("s-10", e.signed("s-10", ssf.EventAccountEnabled, user("ivan"), ssf.AccountEnabled{}))
	bad := e.tx.Sign(func() ssf.SET {
		s := e.tx.SET("other-aud", "s-11", e.a.Clock().Now(), user("ivan"), ssf.EventAccountDisabled, ssf.AccountDisabled{})
		return s
	}())
	e.tx.Enqueue("s-11", bad)
	// Two hours old: refused by push (1 h), taken by poll (7 days), which a
	// receiver that was down collects late.
	e.tx.Enqueue("s-12", e.tx.Sign(e.tx.SET(aud, "s-12", e.a.Clock().Now().Add(-2*time.Hour), user("jack"),
		ssf.EventAccountDisabled, ssf.AccountDisabled{})))
	err := e.tx.WaitPolled(e.ctx, func(acked []string, setErrs map[string]ssf.SETErr) bool {
		return len(acked) == 3 && setErrs["s-11"].Err == "invalid_audience"
	})
	if err != nil {
		t.Fatalf("waiting for the acks: %v", err)
	}
	// s-9 (disable) then s-10 (enable), in order (not as strings): ivan
	// ends up not banned, with one lifted ban.
	if active := e.bans("ivan", pb.BanState_BAN_STATE_ACTIVE); len(active) != 0 {
		t.Fatalf("active bans: %v", active)
	}
	if lifted := e.bans("ivan", pb.BanState_BAN_STATE_LIFTED); len(lifted) != 1 {
		t.Fatalf("lifted bans: %v", lifted)
	}
	if jack := e.bans("jack", pb.BanState_BAN_STATE_ACTIVE); len(jack) != 1 {
		t.Fatalf("jack's bans after a 2 h old polled SET: %v", jack)
	}
}
