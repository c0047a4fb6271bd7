package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/server"
)

// revokeEnv is a real authority (bbolt) with its real HTTP handler served
// by an httptest server.
type revokeEnv struct {
	t     *testing.T
	a     *authoritytest.Authority
	admin *client.Client
	http  *httptest.Server
	// key has scope sessions:write.
	key string
}

func newRevokeEnv(t *testing.T) *revokeEnv {
	t.Helper()
	a := authoritytest.Start(t, authoritytest.Options{})
	h := httptest.NewServer(a.HTTPHandler())
	t.Cleanup(h.Close)
	return &revokeEnv{t: t, a: a, admin: a.Dial(), http: h, key: a.NewAPIKey("app-backend", "sessions:write")}
}

// revokeResult is an answer of /oauth2/revoke.
type revokeResult struct {
	status int
	header http.Header
	body   server.HTTPError
	raw    string
}

// post sends form to /oauth2/revoke with the given Authorization header
// ("" for none) and content type.
func (e *revokeEnv) post(authz, contentType, body string) revokeResult {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.http.URL+"/oauth2/revoke", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return e.do(req)
}

func (e *revokeEnv) do(req *http.Request) revokeResult {
	e.t.Helper()
	resp, err := e.http.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := revokeResult{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			e.t.Fatalf("status %d with a body that is not JSON: %q", resp.StatusCode, raw)
		}
	}
	return r
}

// revoke posts token (and hint, when set) as the sessions:write key.
func (e *revokeEnv) revoke(token, hint string) revokeResult {
	e.t.Helper()
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	return e.post("Bearer "+e.key, "application/x-www-form-urlencoded", form.Encode())
}

func (e *revokeEnv) login(user string) *pb.CreateSessionResponse {
	e.t.Helper()
	s, err := e.admin.Sessions.CreateSession(context.Background(), &pb.CreateSessionRequest{UserId: user})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *revokeEnv) session(id string) *pb.Session {
	e.t.Helper()
	s, err := e.admin.Sessions.GetSession(context.Background(), &pb.GetSessionRequest{SessionId: id})
	if err != nil {
		e.t.Fatal(err)
	}
	return s.GetSession()
}

// audit returns the audit records with action.
func (e *revokeEnv) audit(action string) []*pb.AuditRecord {
	e.t.Helper()
	resp, err := e.admin.Audit.ListAuditRecords(context.Background(), &pb.ListAuditRecordsRequest{Action: action})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.GetRecords()
}

func wantOK(t *testing.T, r revokeResult) {
	t.Helper()
	if r.status != http.StatusOK || r.raw != "" {
		t.Fatalf("status %d body %q, want 200 with an empty body", r.status, r.raw)
	}
}

func TestOAuthRevokeRefreshToken(t *testing.T) {
	e := newRevokeEnv(t)
	s := e.login("alice")
	other := e.login("alice") // another session of the same user stays live
	r := e.revoke(s.GetRefreshToken(), "refresh_token")
	wantOK(t, r)
	if rev, err := strconv.ParseInt(r.header.Get(server.RevisionHeader), 10, 64); err != nil || rev != e.a.Revision() {
		t.Errorf("%s = %q, want the revision of the revocation %d", server.RevisionHeader, r.header.Get(server.RevisionHeader), e.a.Revision())
	}
	_, err := e.admin.Sessions.RefreshSession(context.Background(), &pb.RefreshSessionRequest{RefreshToken: s.GetRefreshToken()})
	if !errors.Is(err, client.ErrSessionRevoked) {
		t.Fatalf("refresh after revocation: %v, want SESSION_REVOKED", err)
	}
	if got := e.session(other.GetSession().GetSessionId()); got.GetRevokeTime() != nil {
		t.Errorf("the user's other session was revoked too: %v", got)
	}
	recs := e.audit("session.revoke_token")
	if len(recs) != 1 {
		t.Fatalf("%d session.revoke_token records, want 1", len(recs))
	}
	if rec := recs[0]; rec.GetChannel() != "http" || rec.GetActor() != "app-backend" || rec.GetTargetId() != s.GetSession().GetSessionId() ||
		rec.GetDetails()["token_type"] != "refresh_token" || !strings.HasPrefix(rec.GetActorAddress(), "127.0.0.1:") {
		t.Errorf("audit record %v", rec)
	}

	// Revoking it again, or the session's access token, changes nothing
	// and still answers 200 (RFC 7009 §2.2).
	before := e.a.Revision()
	wantOK(t, e.revoke(s.GetRefreshToken(), ""))
	wantOK(t, e.revoke(s.GetAccessToken(), "access_token"))
	if after := e.a.Revision(); after != before {
		t.Errorf("revision %d -> %d: revoking a revoked session wrote", before, after)
	}
	if n := len(e.audit("session.revoke_token")); n != 1 {
		t.Errorf("%d session.revoke_token records, want still 1", n)
	}
}

func TestOAuthRevokeAccessTokenReachesMirrors(t *testing.T) {
	e := newRevokeEnv(t)
	watcher := e.a.Dial(client.WithAPIKey(e.a.NewAPIKey("svc", "events:watch")))
	ctx := context.Background()
	m, stop, err := client.StartMirror(ctx, watcher, client.MirrorOptions{Clock: e.a.Clock().Now})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	s := e.login("bob")
	if err := m.WaitRevision(ctx, e.a.Revision()); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Check(ctx, s.GetAccessToken(), client.CheckInput{}); err != nil {
		t.Fatalf("before the revocation: %v", err)
	}
	// The wrong hint: the access token is found after the refresh lookup
	// fails. HTTP Basic with the key as the password, any username.
	req, err := http.NewRequest(http.MethodPost, e.http.URL+"/oauth2/revoke",
		strings.NewReader(url.Values{"token": {s.GetAccessToken()}, "token_type_hint": {"refresh_token"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.SetBasicAuth("whoever", url.QueryEscape(e.key))
	r := e.do(req)
	wantOK(t, r)
	rev, err := strconv.ParseInt(r.header.Get(server.RevisionHeader), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", server.RevisionHeader, err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute) // hang guard
	defer cancel()
	if err := m.WaitRevision(wctx, rev); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Check(ctx, s.GetAccessToken(), client.CheckInput{}); !errors.Is(err, client.ErrSessionRevoked) {
		t.Fatalf("mirror after the revocation: %v, want SESSION_REVOKED", err)
	}
	if recs := e.audit("session.revoke_token"); len(recs) != 1 || recs[0].GetDetails()["token_type"] != "access_token" {
		t.Errorf("audit records %v", recs)
	}
}

// An expired access token still names its session, which may live on
// (its refresh token) for far longer: revoking it is harmless and ends it.
func TestOAuthRevokeExpiredAccessToken(t *testing.T) {
	e := newRevokeEnv(t)
	s := e.login("carol")
	e.a.Clock().Advance(time.Hour) // past the access token's 15 minutes
	wantOK(t, e.revoke(s.GetAccessToken(), "access_token"))
	if got := e.session(s.GetSession().GetSessionId()); got.GetRevokeTime() == nil {
		t.Fatalf("session not revoked: %v", got)
	}
}

// A token signed by a key rotated out long ago (past its verification
// overlap, not yet deleted) is still this authority's: its session is
// revoked.
func TestOAuthRevokeTokenOfRetiredKey(t *testing.T) {
	e := newRevokeEnv(t)
	s := e.login("grace")
	if _, err := e.admin.Keys.RotateKey(context.Background(), &pb.RotateKeyRequest{Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	e.a.Clock().Advance(time.Hour) // the token expired, its key no longer verifies
	wantOK(t, e.revoke(s.GetAccessToken(), ""))
	if got := e.session(s.GetSession().GetSessionId()); got.GetRevokeTime() == nil {
		t.Fatalf("session not revoked: %v", got)
	}
}

func TestOAuthRevokeUnknownTokens(t *testing.T) {
	e := newRevokeEnv(t)
	s := e.login("dave")
	// Another authority's access token: a valid JWT, not signed by us.
	other := authoritytest.Start(t, authoritytest.Options{})
	foreign, err := other.Dial().Sessions.CreateSession(context.Background(), &pb.CreateSessionRequest{UserId: "dave"})
	if err != nil {
		t.Fatal(err)
	}
	before := e.a.Revision()
	for _, tok := range []string{
		"x", "pcr_AAAA",
		"pcr_" + strings.Repeat("A", 43), // the shape of a refresh token, unknown
		foreign.GetRefreshToken(), foreign.GetAccessToken(),
		s.GetAccessToken() + "x", // signature broken
		e.key,                    // an API key is no token
	} {
		for _, hint := range []string{"", "access_token", "refresh_token", "id_token"} {
			wantOK(t, e.revoke(tok, hint))
		}
	}
	if after := e.a.Revision(); after != before {
		t.Errorf("revision %d -> %d: an unknown token wrote", before, after)
	}
	if got := e.session(s.GetSession().GetSessionId()); got.GetRevokeTime() != nil {
		t.Errorf("session revoked by someone else's token: %v", got)
	}
}

func TestOAuthRevokeClientAuthentication(t *testing.T) {
	e := newRevokeEnv(t)
	s := e.login("erin")
	form := url.Values{"token": {s.GetRefreshToken()}}.Encode()
	const ct = "application/x-www-form-urlencoded"
	readOnly := e.a.NewAPIKey("reader", "sessions:read")
	for _, c := range []struct {
		name, authz, reason, challenge string
	}{
		{"none", "", "API_KEY_INVALID", "Basic"},
		{"unknown bearer", "Bearer pck_nope", "API_KEY_INVALID", "Bearer"},
		{"unknown basic", "Basic " + basic("app", "pck_nope"), "API_KEY_INVALID", "Basic"},
		{"other scheme", "Token " + e.key, "API_KEY_INVALID", "Basic"},
		{"wrong scope", "Bearer " + readOnly, "PERMISSION_DENIED", "Bearer"},
		{"wrong scope basic", "Basic " + basic("", readOnly), "PERMISSION_DENIED", "Basic"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.post(c.authz, ct, form)
			if r.status != http.StatusUnauthorized || r.body.Error != "invalid_client" || r.body.Reason != c.reason || r.body.Message == "" ||
				r.body.ErrorDescription != r.body.Message {
				t.Fatalf("status %d body %s, want 401 invalid_client %s", r.status, r.raw, c.reason)
			}
			if ch := strings.Join(r.header.Values("WWW-Authenticate"), ", "); !strings.HasPrefix(ch, c.challenge+` realm="portcullis"`) {
				t.Errorf("WWW-Authenticate %q, want a %s challenge", ch, c.challenge)
			}
		})
	}
	if got := e.session(s.GetSession().GetSessionId()); got.GetRevokeTime() != nil {
		t.Fatalf("a refused client revoked the session: %v", got)
	}
	denied := e.audit("call.denied")
	if len(denied) != 6 {
		t.Fatalf("%d call.denied records, want 6", len(denied))
	}
	for _, rec := range denied {
		if rec.GetChannel() != "http" || rec.GetDetails()["method"] != "POST /oauth2/revoke" {
			t.Errorf("denied record %v", rec)
		}
	}
}

func basic(user, pass string) string {
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth(user, pass)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

func TestOAuthRevokeBadRequests(t *testing.T) {
	e := newRevokeEnv(t)
	s := e.login("frank")
	const ct = "application/x-www-form-urlencoded"
	bearer := "Bearer " + e.key
	for _, c := range []struct {
		name, contentType, body string
	}{
		{"missing token", ct, "token_type_hint=refresh_token"},
		{"empty token", ct, "token="},
		{"no content type", "", "token=" + s.GetRefreshToken()},
		{"json", "application/json", `{"token":"` + s.GetRefreshToken() + `"}`},
		{"token twice", ct, "token=a&token=" + s.GetRefreshToken()},
		{"bad form", ct, "token=%zz"},
		{"too large", ct, "token=" + strings.Repeat("a", 70<<10)},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.post(bearer, c.contentType, c.body)
			if r.status != http.StatusBadRequest || r.body.Error != "invalid_request" || r.body.Reason != "INVALID_ARGUMENT" || r.body.Message == "" {
				t.Fatalf("status %d body %s, want 400 invalid_request", r.status, r.raw)
			}
		})
	}
	t.Run("token in the URL", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/oauth2/revoke?token="+url.QueryEscape(s.GetRefreshToken()), strings.NewReader(""))
		req.Header.Set("Authorization", bearer)
		req.Header.Set("Content-Type", ct)
		if r := e.do(req); r.status != http.StatusBadRequest || r.body.Metadata["field"] != "token" {
			t.Fatalf("status %d body %s, want 400 on token", r.status, r.raw)
		}
	})
	t.Run("GET", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, e.http.URL+"/oauth2/revoke?token=x", nil)
		req.Header.Set("Authorization", bearer)
		r := e.do(req)
		if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != http.MethodPost || r.body.Error != "invalid_request" {
			t.Fatalf("status %d Allow %q body %s, want 405", r.status, r.header.Get("Allow"), r.raw)
		}
	})
	if got := e.session(s.GetSession().GetSessionId()); got.GetRevokeTime() != nil {
		t.Fatalf("a bad request revoked the session: %v", got)
	}
}

// Failed client authentications are bounded per address as over gRPC:
// past the burst, 429 RESOURCE_EXHAUSTED, counted rather than audited one
// by one; a valid key from the same address still works.
func TestOAuthRevokeFailedAuthRateLimit(t *testing.T) {
	e := newEnv(t, envOptions{server: server.Options{Limits: server.Limits{FailedAuthPerSecond: slow, FailedAuthBurst: 3}}})
	h := httptest.NewServer(e.srv.HTTPHandler())
	defer h.Close()
	s := e.login(&pb.CreateSessionRequest{UserId: "alice"})
	re := &revokeEnv{t: t, http: h, key: e.keyWith("app", "sessions:write")}
	form := url.Values{"token": {s.GetRefreshToken()}}.Encode()
	const ct = "application/x-www-form-urlencoded"
	for range 3 {
		if r := re.post("Bearer pck_nope", ct, form); r.status != http.StatusUnauthorized {
			t.Fatalf("status %d body %s, want 401", r.status, r.raw)
		}
	}
	r := re.post("Bearer pck_nope", ct, form)
	if r.status != http.StatusTooManyRequests || r.body.Reason != "RESOURCE_EXHAUSTED" || r.body.Metadata["limit"] != "failed_auth_rate" {
		t.Fatalf("status %d body %s, want 429 failed_auth_rate", r.status, r.raw)
	}
	wantOK(t, re.revoke(s.GetRefreshToken(), ""))
	aud, err := e.audit.ListAuditRecords(e.admin(), &pb.ListAuditRecordsRequest{Action: "call.denied"})
	if err != nil || len(aud.GetRecords()) != 3 {
		t.Fatalf("%d call.denied records (%v), want 3", len(aud.GetRecords()), err)
	}
	got, err := e.sessions.GetSession(e.admin(), &pb.GetSessionRequest{SessionId: s.GetSession().GetSessionId()})
	if err != nil || got.GetSession().GetRevokeTime() == nil {
		t.Fatalf("session not revoked: %v (%v)", got, err)
	}
}
