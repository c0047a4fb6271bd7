package agent_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/agent"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// TestForwardAuth drives /authz through the cases every front door must
// get right, against a real authority: identity, ban and lift without a
// restart, public routes, capability routes, token problems.
func TestForwardAuth(t *testing.T) {
	e := startEnv(t, testConfig, client.MirrorOptions{}, agent.Options{})
	alice := e.login(t, "alice", "")
	bob := e.login(t, "bob", "")

	wantAllowed(t, e.authz(t, "GET", "/api/posts?page=2", alice, nil), "alice")

	t.Run("no token", func(t *testing.T) {
		a := e.authz(t, "GET", "/api/posts", "", nil)
		wantRefused(t, a, http.StatusUnauthorized, "TOKEN_INVALID")
		if a.header.Get("WWW-Authenticate") == "" {
			t.Error("401 without WWW-Authenticate")
		}
	})
	t.Run("forged token", func(t *testing.T) {
		wantRefused(t, e.authz(t, "GET", "/api/posts", alice[:len(alice)-4]+"AAAA", nil), http.StatusUnauthorized, "TOKEN_INVALID")
	})
	t.Run("ban then lift, no restart", func(t *testing.T) {
		ban := e.ban(t, userBan("alice"))
		a := e.authz(t, "GET", "/api/posts", alice, nil)
		wantRefused(t, a, http.StatusForbidden, "USER_BANNED")
		if a.body.BanID != ban.GetBanId() || a.header.Get("X-Portcullis-Ban-Id") != ban.GetBanId() {
			t.Fatalf("ban id: body %q header %q, want %q", a.body.BanID, a.header.Get("X-Portcullis-Ban-Id"), ban.GetBanId())
		}
		wantAllowed(t, e.authz(t, "GET", "/api/posts", bob, nil), "bob")
		e.lift(t, ban.GetBanId())
		// The ban revoked alice's session: a new login passes.
		wantRefused(t, e.authz(t, "GET", "/api/posts", alice, nil), http.StatusUnauthorized, "SESSION_REVOKED")
		alice = e.login(t, "alice", "")
		wantAllowed(t, e.authz(t, "GET", "/api/posts", alice, nil), "alice")
	})
	t.Run("public", func(t *testing.T) {
		wantAllowed(t, e.authz(t, "GET", "/public/logo.png", "", nil), "")
		wantAllowed(t, e.authz(t, "POST", "/public", "", nil), "")
		// Not public: a sibling prefix, and paths that resolve elsewhere.
		for _, uri := range []string{"/publicity", "/public/../admin", "/public%2F..%2Fadmin", "//public/../admin"} {
			wantRefused(t, e.authz(t, "GET", uri, "", nil), http.StatusUnauthorized, "TOKEN_INVALID")
		}
	})
	t.Run("capability ban refuses its route only", func(t *testing.T) {
		ban := e.ban(t, userBan("bob", "post"))
		a := e.authz(t, "POST", "/api/posts/new", bob, nil)
		wantRefused(t, a, http.StatusForbidden, "CAPABILITY_RESTRICTED")
		if a.body.Capability != "post" {
			t.Errorf("capability %q", a.body.Capability)
		}
		// Encoding the slash does not side-step the route.
		wantRefused(t, e.authz(t, "POST", "/api%2Fposts", bob, nil), http.StatusForbidden, "CAPABILITY_RESTRICTED")
		wantAllowed(t, e.authz(t, "GET", "/api/posts", bob, nil), "bob")
		wantAllowed(t, e.authz(t, "POST", "/api/comments", bob, nil), "bob")
		e.lift(t, ban.GetBanId())
		wantAllowed(t, e.authz(t, "POST", "/api/posts/new", bob, nil), "bob")
	})
	t.Run("device header", func(t *testing.T) {
		ban := e.ban(t, &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_DeviceId{DeviceId: "dev-9"}}, Reason: "fraud"})
		wantRefused(t, e.authz(t, "GET", "/x", bob, map[string]string{"X-Device-Id": "dev-9"}), http.StatusForbidden, "DEVICE_BANNED")
		wantAllowed(t, e.authz(t, "GET", "/x", bob, map[string]string{"X-Device-Id": "dev-1"}), "bob")
		e.lift(t, ban.GetBanId())
	})
	t.Run("forwarded client from a trusted peer", func(t *testing.T) {
		ban := e.ban(t, ipBan("203.0.113.9"))
		// The test is 127.0.0.1, a trusted proxy: the right-most untrusted
		// entry is the client; the spoofed one left of it is not.
		wantRefused(t, e.authz(t, "GET", "/x", bob, map[string]string{"X-Forwarded-For": "203.0.113.9"}), http.StatusForbidden, "IP_BANNED")
		wantAllowed(t, e.authz(t, "GET", "/x", bob, map[string]string{"X-Forwarded-For": "203.0.113.9, 198.51.100.1"}), "bob")
		e.lift(t, ban.GetBanId())
	})
	t.Run("forwarded header from an untrusted peer is ignored", func(t *testing.T) {
		ban := e.ban(t, ipBan("203.0.113.9"))
		req, _ := http.NewRequest("GET", e.srv.URL+"/authz", nil)
		req.Header.Set("X-Original-URI", "/x")
		req.Header.Set("Authorization", "Bearer "+bob)
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		// From 127.0.0.7, which is not a trusted proxy.
		wantAllowed(t, do(t, fromAddr("127.0.0.7"), req), "bob")
		e.lift(t, ban.GetBanId())
		ipb := e.ban(t, ipBan("127.0.0.7"))
		wantRefused(t, do(t, fromAddr("127.0.0.7"), req), http.StatusForbidden, "IP_BANNED")
		e.lift(t, ipb.GetBanId())
	})
	t.Run("original request headers", func(t *testing.T) {
		// Caddy's and Traefik's convention.
		req, _ := http.NewRequest("GET", e.srv.URL+"/authz", nil)
		req.Header.Set("X-Forwarded-Method", "GET")
		req.Header.Set("X-Forwarded-Uri", "/public/a")
		wantAllowed(t, do(t, http.DefaultClient, req), "")
		// The client sent the other convention's header: refused.
		req.Header.Set("X-Original-URI", "/public/a")
		req.Header.Set("X-Forwarded-Uri", "/api/posts")
		wantRefused(t, do(t, http.DefaultClient, req), http.StatusBadRequest, "INVALID_ARGUMENT")
		req.Header.Del("X-Original-URI")
		req.Header.Add("X-Forwarded-Uri", "/public/a")
		wantRefused(t, do(t, http.DefaultClient, req), http.StatusBadRequest, "INVALID_ARGUMENT")
		req.Header.Del("X-Forwarded-Uri")
		wantRefused(t, do(t, http.DefaultClient, req), http.StatusBadRequest, "INVALID_ARGUMENT")
	})
	t.Run("metrics", func(t *testing.T) {
		resp, err := http.Get(e.srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{
			`portcullis_agent_decisions_total{door="forward_auth",reason="USER_BANNED",result="refused"} 1`,
			`portcullis_agent_decisions_total{door="forward_auth",reason="",result="public"}`,
			`portcullis_agent_decision_seconds_bucket{door="forward_auth"`,
			`portcullis_mirror_staleness_seconds`,
			`portcullis_mirror_lag_revisions 0`,
		} {
			if !strings.Contains(string(b), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
}

// TestReloadKeepsConfigOnError: an invalid configuration is refused and
// the previous one keeps deciding.
func TestReloadKeepsConfigOnError(t *testing.T) {
	e := startEnv(t, testConfig, client.MirrorOptions{}, agent.Options{})
	if err := e.agent.Reload(agent.Config{Routes: []agent.Route{{PathPrefix: "/api", Capability: "POST"}}}); err == nil {
		t.Fatal("a capability outside the grammar was accepted")
	}
	wantAllowed(t, e.authz(t, "GET", "/public/x", "", nil), "")
	if err := e.agent.Reload(agent.Config{}); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, e.authz(t, "GET", "/public/x", "", nil), http.StatusUnauthorized, "TOKEN_INVALID")
}

// TestForwardAuthConcurrentSessions: many sessions decided at once share
// the agent's rendered answers (admitted.go) without mixing them up: each
// admission names its own token's user and session (run with -race).
func TestForwardAuthConcurrentSessions(t *testing.T) {
	e := startEnv(t, testConfig, client.MirrorOptions{}, agent.Options{})
	h := e.agent.Handler()
	type who struct{ user, session, token string }
	var users []who
	for i := range 16 {
		user := "u" + string(rune('a'+i))
		resp, err := e.admin.Sessions.CreateSession(hang(t), &pb.CreateSessionRequest{UserId: user})
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, who{user, resp.GetSession().GetSessionId(), resp.GetAccessToken()})
	}
	errs := make(chan error, len(users))
	for _, u := range users {
		go func() {
			for range 200 {
				req := httptest.NewRequest("GET", "/authz", nil)
				req.Header.Set("Authorization", "Bearer "+u.token)
				req.Header.Set("X-Original-Uri", "/api/posts")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK || w.Header().Get("X-Portcullis-User") != u.user || w.Header().Get("X-Portcullis-Session") != u.session {
					errs <- fmt.Errorf("%s: %d %v", u.user, w.Code, w.Header())
					return
				}
			}
			errs <- nil
		}()
	}
	for range users {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
