package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/authoritytest"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/server"
)

func TestSignInSetsAStrictHttpOnlyBoundedCookie(t *testing.T) {
	a, srv := consoleServer(t, authoritytest.Options{})
	resp := signIn(t, browser(t), srv.URL, a.AdminKey)
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies: %v", cookies)
	}
	ck := cookies[0]
	if ck.Name != "portcullis_console" || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.Path != "/" {
		t.Errorf("cookie %+v: want portcullis_console, HttpOnly, SameSite=Strict, not Secure on plaintext, Path /", ck)
	}
	if ck.MaxAge <= 0 || ck.MaxAge > 24*3600 {
		t.Errorf("cookie MaxAge %d: want a bounded lifetime", ck.MaxAge)
	}
	if strings.Contains(ck.Value, a.AdminKey) {
		t.Error("the cookie carries the API key")
	}
}

func TestSignInUnderTLSSetsASecureHostCookie(t *testing.T) {
	a := authoritytest.Start(t, authoritytest.Options{})
	srv := httptest.NewTLSServer(a.HTTPHandler(server.WithConsole(true)))
	defer srv.Close()
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.PostForm(srv.URL+"/console/login", url.Values{"key": {a.AdminKey}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if len(cookies) != 1 || cookies[0].Name != "__Host-portcullis_console" || !cookies[0].Secure || !cookies[0].HttpOnly {
		t.Fatalf("cookies under TLS: %+v; want one Secure HttpOnly __Host- cookie", cookies)
	}
}

func TestWrongKeyIsRefusedWithoutACookie(t *testing.T) {
	_, srv := consoleServer(t, authoritytest.Options{})
	c := browser(t)
	resp, body := post(t, c, srv.URL+"/console/login", url.Values{"key": {"pk_not-a-key"}})
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Fatalf("wrong key: %s, cookies %v", resp.Status, resp.Cookies())
	}
	if !strings.Contains(body, "unknown, revoked or expired") {
		t.Errorf("the page does not say why:\n%s", body)
	}
	resp, _ = get(t, c, srv.URL+"/console/bans")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
		t.Errorf("bans page without a session: %s to %q, want 303 to /console/login", resp.Status, resp.Header.Get("Location"))
	}
}

func TestSecurityHeaders(t *testing.T) {
	a, srv := consoleServer(t, authoritytest.Options{})
	c := browser(t)
	check := func(path string) {
		t.Helper()
		resp, _ := get(t, c, srv.URL+path)
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"frame-ancestors 'none'", "script-src 'self'", "default-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP %q allows inline script", path, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q", path, h.Get("X-Content-Type-Options"))
		}
	}
	check("/console/login")
	check("/console/static/console.js")
	signIn(t, c, srv.URL, a.AdminKey)
	for _, p := range []string{"/console/bans", "/console/audit", "/console/sessions", "/console/fleet", "/console/keys", "/console/apikeys"} {
		check(p)
		resp, body := get(t, c, srv.URL+p)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %s\n%s", p, resp.Status, body)
		}
		if strings.Contains(body, "<script>") || strings.Contains(body, " onclick=") || strings.Contains(body, "style=") {
			t.Errorf("%s has inline script or style, which the CSP blocks", p)
		}
	}
}

func TestPostWithoutCSRFTokenIsRefused(t *testing.T) {
	a, srv := consoleServer(t, authoritytest.Options{})
	c := browser(t)
	signIn(t, c, srv.URL, a.AdminKey)
	ban := url.Values{"tenant": {"t1"}, "kind": {"user"}, "value": {"mallory"}, "duration": {"1h"}}
	resp, _ := post(t, c, srv.URL+"/console/bans", ban)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("ban without CSRF token: %s, want 403", resp.Status)
	}
	ban.Set("csrf", "not-the-token")
	if resp, _ = post(t, c, srv.URL+"/console/bans", ban); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("ban with a wrong CSRF token: %s, want 403", resp.Status)
	}
	if banned(t, a, "t1", "mallory") {
		t.Fatal("a POST without the CSRF token created a ban")
	}
	_, page := get(t, c, srv.URL+"/console/bans")
	ban.Set("csrf", csrf(t, page))
	if resp, _ = post(t, c, srv.URL+"/console/bans", ban); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("ban with the CSRF token: %s, want 303", resp.Status)
	}
	if !banned(t, a, "t1", "mallory") {
		t.Fatal("the ban with the CSRF token is not in force")
	}
}

func TestKeyWithoutBanScopeSeesNoFormAndIsRefused(t *testing.T) {
	a, srv := consoleServer(t, authoritytest.Options{})
	c := browser(t)
	signIn(t, c, srv.URL, a.NewAPIKey("reader", "bans:read"))
	resp, page := get(t, c, srv.URL+"/console/bans")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bans page: %s", resp.Status)
	}
	if strings.Contains(page, `id="ban-form"`) {
		t.Error("a key without bans:write is shown the ban form")
	}
	if strings.Contains(page, `href="/console/audit"`) {
		t.Error("a key without audit:read is shown the audit page")
	}
	form := url.Values{"csrf": {csrf(t, page)}, "tenant": {"t1"}, "kind": {"user"}, "value": {"mallory"}}
	if resp, _ = post(t, c, srv.URL+"/console/bans", form); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("hand-made ban POST without bans:write: %s, want 403", resp.Status)
	}
	if banned(t, a, "t1", "mallory") {
		t.Fatal("a key without bans:write created a ban")
	}
	resp, body := get(t, c, srv.URL+"/console/audit")
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" ||
		!strings.Contains(body, "audit:read") {
		t.Errorf("audit page without audit:read: %s, %q, want 403, an HTML page naming the scope:\n%s", resp.Status, resp.Header.Get("Content-Type"), body)
	}
}

func TestLogoutEndsTheSessionServerSide(t *testing.T) {
	a, srv := consoleServer(t, authoritytest.Options{})
	c := browser(t)
	signIn(t, c, srv.URL, a.AdminKey)
	u, _ := url.Parse(srv.URL)
	old := c.Jar.Cookies(u)
	_, page := get(t, c, srv.URL+"/console/bans")
	resp, _ := post(t, c, srv.URL+"/console/logout", url.Values{"csrf": {csrf(t, page)}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %s", resp.Status)
	}
	// Replay the old cookie, as a stolen copy would be.
	replay := browser(t)
	replay.Jar.SetCookies(u, old)
	if resp, _ = get(t, replay, srv.URL+"/console/bans"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
		t.Fatalf("old cookie after logout: %s to %q, want 303 to sign-in", resp.Status, resp.Header.Get("Location"))
	}
	if resp, _ = post(t, replay, srv.URL+"/console/bans", url.Values{"csrf": {csrf(t, page)}, "kind": {"user"}, "value": {"x"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST with the old cookie after logout: %s, want 401", resp.Status)
	}
}

func TestSessionEndsWithItsLifetimeAndWithItsKey(t *testing.T) {
	a, srv := consoleServer(t, authoritytest.Options{})
	c := browser(t)
	signIn(t, c, srv.URL, a.AdminKey)
	a.Clock().Advance(31 * time.Minute) // past the idle lifetime
	if resp, _ := get(t, c, srv.URL+"/console/bans"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after 31 idle minutes: %s, want a redirect to sign in", resp.Status)
	}

	key := a.NewAPIKey("oncall", "bans:read")
	signIn(t, c, srv.URL, key)
	if resp, _ := get(t, c, srv.URL+"/console/bans"); resp.StatusCode != http.StatusOK {
		t.Fatalf("signed in again: %s", resp.Status)
	}
	admin := a.Dial()
	keys, err := admin.APIKeys.ListAPIKeys(context.Background(), &pb.ListAPIKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys.GetApiKeys() {
		if k.GetName() == "oncall" {
			if _, err := admin.APIKeys.RevokeAPIKey(context.Background(), &pb.RevokeAPIKeyRequest{ApiKeyId: k.GetApiKeyId()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if resp, _ := get(t, c, srv.URL+"/console/bans"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after its key was revoked over gRPC: %s, want a redirect to sign in", resp.Status)
	}
}

func TestBanCreateLiftAndAuditAsTheKeyThroughTheConsole(t *testing.T) {
	a, srv := consoleServer(t, authoritytest.Options{})
	admin := a.Dial()
	ctx := context.Background()
	for range 3 {
		if _, err := admin.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{TenantId: "t1", UserId: "mallory"}); err != nil {
			t.Fatal(err)
		}
	}
	c := browser(t)
	signIn(t, c, srv.URL, a.NewAPIKey("oncall-alice", "bans:write", "bans:read", "audit:read"))
	_, page := get(t, c, srv.URL+"/console/bans")
	tok := csrf(t, page)
	resp, _ := post(t, c, srv.URL+"/console/bans", url.Values{"csrf": {tok}, "tenant": {"t1"}, "kind": {"user"},
		"value": {"mallory"}, "duration": {"2h"}, "reason": {"spam wave"}, "policy": {"abuse-7"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %s", resp.Status)
	}
	_, page = get(t, c, srv.URL+resp.Header.Get("Location"))
	if !strings.Contains(page, "sessions revoked: 3") {
		t.Errorf("the ban page does not show the 3 revoked sessions:\n%s", page)
	}
	_, list := get(t, c, srv.URL+"/console/bans?reason=SPAM&state=active")
	if !strings.Contains(list, "user:mallory") || !strings.Contains(list, "enforced by 0/0 mirrors") {
		t.Errorf("the search by reason does not list the ban with its enforcement:\n%s", list)
	}
	if _, none := get(t, c, srv.URL+"/console/bans?reason=phishing"); strings.Contains(none, "user:mallory") {
		t.Error("a search by another reason lists the ban")
	}
	banURL := resp.Header.Get("Location")
	banURL = banURL[:strings.Index(banURL, "?")]
	resp, _ = post(t, c, srv.URL+banURL+"/lift", url.Values{"csrf": {tok}, "reason": {"appeal granted"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("lift: %s", resp.Status)
	}
	if banned(t, a, "t1", "mallory") {
		t.Fatal("still banned after the lift")
	}
	_, trail := get(t, c, srv.URL+banURL)
	if strings.Count(trail, "<td>ban.create</td>") != 1 || strings.Count(trail, "<td>ban.lift</td>") != 1 || !strings.Contains(trail, "appeal granted") {
		t.Errorf("the ban's page does not show its create and lift records:\n%s", trail)
	}
	_, audit := get(t, c, srv.URL+"/console/audit?actor=oncall-alice&channel=console")
	for _, want := range []string{"ban.create", "ban.lift", "appeal granted", "<td>console</td><td>127.0.0.1:"} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit page lacks %q:\n%s", want, audit)
		}
	}
	if _, grpc := get(t, c, srv.URL+"/console/audit?actor=oncall-alice&channel=grpc"); strings.Contains(grpc, "<td>ban.create</td>") {
		t.Errorf("the audit page's grpc channel lists the console's records:\n%s", grpc)
	}
	// Over the API: the channel is a field of its own, the address only
	// the client's; the sessions created over gRPC say so.
	byChannel := func(ch string) []*pb.AuditRecord {
		t.Helper()
		res, err := admin.Audit.ListAuditRecords(ctx, &pb.ListAuditRecordsRequest{Subject: "user:mallory", Channel: ch})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetRecords()
	}
	console := byChannel("console")
	if len(console) != 2 {
		t.Fatalf("%d console records of user:mallory, want 2 (create, lift): %v", len(console), console)
	}
	for _, r := range console {
		if r.GetChannel() != "console" || r.GetActor() != "oncall-alice" || !strings.HasPrefix(r.GetActorAddress(), "127.0.0.1:") {
			t.Errorf("console record %v: want channel console, actor oncall-alice, address 127.0.0.1:port", r)
		}
	}
	for _, r := range byChannel("grpc") {
		if r.GetAction() != "session.create" || r.GetChannel() != "grpc" {
			t.Errorf("grpc record of user:mallory %v: want the session.create records only", r)
		}
	}
}

// banned checks a user through the gRPC API.
func banned(t *testing.T, a *authoritytest.Authority, tenant, user string) bool {
	t.Helper()
	res, err := a.Dial().Bans.CheckBan(context.Background(), &pb.CheckBanRequest{TenantId: tenant, UserId: user})
	if err != nil {
		t.Fatal(err)
	}
	return res.GetBanned()
}

func TestLiveStreamEndsWhenTheServerShutsDown(t *testing.T) {
	a, srv := consoleServer(t, authoritytest.Options{})
	c := browser(t)
	signIn(t, c, srv.URL, a.AdminKey)
	resp, err := c.Get(srv.URL + "/console/live/fleet")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("live fleet: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	first := make([]byte, 4096)
	n, err := resp.Body.Read(first)
	if err != nil || !strings.Contains(string(first[:n]), "fleet-table") {
		t.Fatalf("first event: %q, %v", first[:n], err)
	}
	a.Stop()
	// The stream ends (the body reaches EOF) instead of holding the HTTP
	// server's graceful shutdown; the test's timeout is the hang guard.
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatalf("reading to the end of the stream: %v", err)
	}
}

func TestAPIKeySecretShownOnceAndSessionsRevoked(t *testing.T) {
	a, srv := consoleServer(t, authoritytest.Options{})
	ctx := context.Background()
	admin := a.Dial()
	var ids []string
	for range 3 {
		s, err := admin.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{TenantId: "t1", UserId: "bob", DeviceId: "phone"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.GetSession().GetSessionId())
	}
	c := browser(t)
	signIn(t, c, srv.URL, a.AdminKey)
	_, page := get(t, c, srv.URL+"/console/apikeys")
	tok := csrf(t, page)
	resp, created := post(t, c, srv.URL+"/console/apikeys", url.Values{"csrf": {tok}, "name": {"oncall-bob"}, "scope": {"sessions:read", "sessions:write"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create API key: %s\n%s", resp.Status, created)
	}
	m := regexp.MustCompile(`<pre>(pcl_[^<]+)</pre>`).FindStringSubmatch(created)
	if m == nil {
		t.Fatalf("the new key's secret is not shown:\n%s", created)
	}
	if _, again := get(t, c, srv.URL+"/console/apikeys"); strings.Contains(again, m[1]) {
		t.Fatal("the secret is shown again after its creation")
	}

	bob := browser(t)
	signIn(t, bob, srv.URL, m[1])
	_, list := get(t, bob, srv.URL+"/console/sessions?tenant=t1&user=bob")
	for _, id := range ids {
		if !strings.Contains(list, id) {
			t.Errorf("session %s not listed:\n%s", id, list)
		}
	}
	tok = csrf(t, list)
	if resp, _ = post(t, bob, srv.URL+"/console/sessions/"+ids[0]+"/revoke", url.Values{"csrf": {tok}, "reason": {"lost phone"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke one: %s", resp.Status)
	}
	got, err := admin.Sessions.GetSession(ctx, &pb.GetSessionRequest{SessionId: ids[0]})
	if err != nil || got.GetSession().GetRevokeTime() == nil {
		t.Fatalf("session %s after the console revoked it: %v, %v", ids[0], got, err)
	}
	resp, _ = post(t, bob, srv.URL+"/console/sessions/revoke-user", url.Values{"csrf": {tok}, "tenant": {"t1"}, "user": {"bob"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "Revoked+2+sessions") {
		t.Fatalf("revoke all: %s to %q, want the 2 still live counted", resp.Status, resp.Header.Get("Location"))
	}
	// oncall-bob may not see bans: no link, and 403.
	if strings.Contains(list, `href="/console/bans"`) {
		t.Error("a key without bans:read is shown the bans page")
	}
	if resp, _ = get(t, bob, srv.URL+"/console/bans"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("bans page without bans:read: %s, want 403", resp.Status)
	}
}
