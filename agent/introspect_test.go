package agent_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/agent"
	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

type introspection struct {
	Active bool   `json:"active"`
	Sub    string `json:"sub"`
	Sid    string `json:"sid"`
	Tid    string `json:"tid"`
	Iss    string `json:"iss"`
	Exp    int64  `json:"exp"`
	Iat    int64  `json:"iat"`
}

const introspectSecret = "s3cret-of-the-resource-server"

// introspect posts token to /introspect with the given Authorization
// header value ("" for none), and returns the status and the answer.
func (e *env) introspect(t *testing.T, auth, token string) (int, introspection, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(hang(t), "POST", e.srv.URL+"/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(raw)
	var out introspection
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out, raw
}

// TestIntrospect: RFC 7662 from the mirror. Only a token the mirror
// accepts is active; banned, revoked, expired, forged and unknown tokens
// are {"active": false} alone; a caller without the secret is refused.
func TestIntrospect(t *testing.T) {
	// A long staleness bound: the test moves the clock past the tokens'
	// expiry, and the mirror must not turn stale meanwhile.
	e := startEnv(t, testConfig, client.MirrorOptions{StaleAfter: 24 * time.Hour},
		agent.Options{IntrospectSecrets: []string{"old-secret", introspectSecret}, Issuer: "portcullis", Audience: "portcullis"})
	bearer := "Bearer " + introspectSecret
	wantInactive := func(what, token string) {
		t.Helper()
		code, _, raw := e.introspect(t, bearer, token)
		if code != http.StatusOK || len(raw) != 1 || raw["active"] != false {
			t.Fatalf("%s: %d %v, want 200 {\"active\": false}", what, code, raw)
		}
	}

	alice := e.login(t, "alice", "")
	code, got, _ := e.introspect(t, bearer, alice)
	if code != http.StatusOK || !got.Active || got.Sub != "alice" || got.Tid != "public" || !strings.HasPrefix(got.Sid, "ses_") ||
		got.Iss != "portcullis" || got.Exp <= got.Iat {
		t.Fatalf("alice: %d %+v", code, got)
	}

	t.Run("caller authentication", func(t *testing.T) {
		for _, auth := range []string{"", "Bearer wrong", "Bearer " + introspectSecret + "x", "Basic " + basic("rs", "wrong")} {
			if code, _, _ := e.introspect(t, auth, alice); code != http.StatusUnauthorized {
				t.Errorf("Authorization %q: %d, want 401", auth, code)
			}
		}
		if code, got, _ := e.introspect(t, "Basic "+basic("rs", introspectSecret), alice); code != http.StatusOK || !got.Active {
			t.Errorf("Basic with the secret: %d %+v", code, got)
		}
		if code, got, _ := e.introspect(t, "Bearer old-secret", alice); code != http.StatusOK || !got.Active {
			t.Errorf("the other configured secret: %d %+v", code, got)
		}
	})
	t.Run("forged", func(t *testing.T) { wantInactive("forged", alice[:len(alice)-6]+"AAAAAA") })
	t.Run("unknown", func(t *testing.T) {
		wantInactive("garbage", "not-a-token")
		// Well formed, signed by another authority's key.
		other := authoritytest.Start(t, authoritytest.Options{})
		resp, err := other.Dial().Sessions.CreateSession(context.Background(), &pb.CreateSessionRequest{UserId: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		wantInactive("another authority's token", resp.GetAccessToken())
	})
	t.Run("banned", func(t *testing.T) {
		// A full ban also revokes the sessions it matches; the mirror
		// checks bans first, and the metrics say which refused the token.
		bob := e.login(t, "bob", "")
		dave := e.login(t, "dave", "phone-1")
		ban := e.ban(t, userBan("bob"))
		wantInactive("banned", bob)
		e.lift(t, ban.GetBanId())
		ban = e.ban(t, &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_DeviceId{DeviceId: "phone-1"}}, Reason: "fraud"})
		wantInactive("device banned", dave)
		e.lift(t, ban.GetBanId())
		m := e.metrics(t)
		for _, want := range []string{
			`portcullis_agent_decisions_total{door="introspect",reason="USER_BANNED",result="refused"} 1`,
			`portcullis_agent_decisions_total{door="introspect",reason="DEVICE_BANNED",result="refused"} 1`,
		} {
			if !strings.Contains(m, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
	t.Run("revoked", func(t *testing.T) {
		resp, err := e.admin.Sessions.CreateSession(context.Background(), &pb.CreateSessionRequest{UserId: "carol"})
		if err != nil {
			t.Fatal(err)
		}
		if code, got, _ := e.introspect(t, bearer, resp.GetAccessToken()); code != http.StatusOK || !got.Active {
			t.Fatalf("carol before: %d %+v", code, got)
		}
		if _, err := e.admin.Sessions.RevokeSession(context.Background(), &pb.RevokeSessionRequest{SessionId: resp.GetSession().GetSessionId(), Reason: "logout"}); err != nil {
			t.Fatal(err)
		}
		e.caughtUp(t)
		wantInactive("revoked", resp.GetAccessToken())
	})
	t.Run("expired", func(t *testing.T) {
		tok := e.login(t, "erin", "")
		e.Clock().Advance(16 * time.Minute) // past the 15-minute access token
		wantInactive("expired", tok)
	})
	t.Run("no token parameter", func(t *testing.T) {
		if code, _, raw := e.introspect(t, bearer, ""); code != http.StatusBadRequest || raw["error"] != "invalid_request" {
			t.Fatalf("%d %v", code, raw)
		}
	})
}

// TestIntrospectOff: without secrets, /introspect is not served.
func TestIntrospectOff(t *testing.T) {
	e := startEnv(t, testConfig, client.MirrorOptions{}, agent.Options{})
	resp, err := http.Post(e.srv.URL+"/introspect", "application/x-www-form-urlencoded", strings.NewReader("token=x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("%d, want 404", resp.StatusCode)
	}
}

func basic(user, pw string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pw)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

// metrics returns the agent's /metrics page.
func (e *env) metrics(t testing.TB) string {
	t.Helper()
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
