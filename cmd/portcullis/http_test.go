package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// httpEnv is a running authority with its HTTP listener on.
func startHTTPEnv(t *testing.T) (e *cliEnv, httpBase string) {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	hl := freeAddr(t)
	addr, stop := startServeConfig(t, serveConfig{dataDir: data, httpListen: hl}, nil)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &cliEnv{t: t, addr: addr, data: data}, "http://" + hl
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	return resp, body
}

// scrape parses /metrics with Prometheus' own text parser.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	_, body := get(t, base+"/metrics")
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return mf
}

// value is the value of the sample of family name whose labels include
// all of labels (name=value pairs); -1 when there is none.
func value(mf map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f, ok := mf[name]
	if !ok {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

func TestMetricsMove(t *testing.T) {
	e, base := startHTTPEnv(t)
	before := scrape(t, base)
	for _, name := range []string{"grpc_server_handled_total", "portcullis_active_bans", "portcullis_sessions_total",
		"portcullis_watch_subscribers", "portcullis_events_total", "portcullis_store_commit_seconds", "go_goroutines"} {
		if _, ok := before[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if v := value(before, "portcullis_active_bans", "kind", "user"); v != 0 {
		t.Fatalf("active user bans before any ban: %v", v)
	}

	e.login("m1")
	e.login("m1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := e.client().Events.Watch(ctx, &pb.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil { // the snapshot: the stream is open
		t.Fatal(err)
	}
	e.ok("ban", "--user", "m1", "--reason", "spam")
	_, err = e.client().Sessions.CreateSession(context.Background(), &pb.CreateSessionRequest{UserId: "m1"})
	if !errors.Is(err, client.ErrUserBanned) {
		t.Fatalf("CreateSession of a banned user: %v", err)
	}
	if code, _, _ := e.run("bans", "--api-key", "not-a-key"); code != exitError {
		t.Fatal("a bad API key was accepted")
	}

	after := scrape(t, base)
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"portcullis_active_bans", []string{"kind", "user"}, 1},
		{"portcullis_active_bans", []string{"kind", "ip"}, 0},
		{"portcullis_sessions_total", []string{"op", "created"}, 2},
		{"portcullis_sessions_total", []string{"op", "revoked"}, 2},
		{"portcullis_rejections_total", []string{"reason", "USER_BANNED"}, 1},
		{"portcullis_rejections_total", []string{"reason", "API_KEY_INVALID"}, 1},
		{"portcullis_events_total", []string{"kind", "ban.created"}, 1},
		{"portcullis_events_total", []string{"kind", "session.revoked"}, 2},
		{"portcullis_watch_subscribers", nil, 1},
		{"grpc_server_handled_total", []string{"grpc_method", "CreateBan", "grpc_code", "OK"}, 1},
		{"grpc_server_handled_total", []string{"grpc_method", "CreateSession", "grpc_code", "PermissionDenied"}, 1},
	}
	for _, c := range checks {
		if got := value(after, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if n := value(after, "portcullis_store_commit_seconds", "result", "ok"); n < 3 {
		t.Errorf("store commits observed: %v, want at least 3 (two logins and a ban)", n)
	}
}

// TestJWKSVerifiesTokens verifies an access token with lestrrat-go/jwx, a
// JWT library Portcullis does not otherwise use, from the keys it fetched
// from /.well-known/jwks.json: what a service in another stack would do.
func TestJWKSVerifiesTokens(t *testing.T) {
	e, base := startHTTPEnv(t)
	resp, body := get(t, base+"/.well-known/jwks.json")
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=") {
		t.Fatalf("Cache-Control %q", cc)
	}
	if !strings.Contains(string(body), `"kty":"OKP"`) || !strings.Contains(string(body), `"crv":"Ed25519"`) {
		t.Fatalf("JWKS: %s", body)
	}

	sess := e.login("j1")
	set, err := jwk.Fetch(context.Background(), base+"/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Parse([]byte(sess.GetAccessToken()), jwt.WithKeySet(set), jwt.WithValidate(true))
	if err != nil {
		t.Fatalf("jwx could not verify the access token with the JWKS: %v", err)
	}
	if sub, _ := tok.Subject(); sub != "j1" {
		t.Fatalf("sub %q", sub)
	}
	var sid string
	if err := tok.Get("sid", &sid); err != nil || sid != sess.GetSession().GetSessionId() {
		t.Fatalf("sid %q (%v), want %s", sid, err, sess.GetSession().GetSessionId())
	}

	// A token altered by one byte does not verify.
	bad := []byte(sess.GetAccessToken())
	bad[len(bad)-3] ^= 1
	if _, err := jwt.Parse(bad, jwt.WithKeySet(set)); err == nil {
		t.Fatal("a tampered token verified")
	}

	// After a rotation the JWKS has both keys, and a new token verifies
	// only against the refetched set (its kid is new).
	e.ok("keys", "rotate")
	sess2 := e.login("j2")
	if _, err := jwt.Parse([]byte(sess2.GetAccessToken()), jwt.WithKeySet(set)); err == nil {
		t.Fatal("a token of the new key verified against the old set")
	}
	set, err = jwk.Fetch(context.Background(), base+"/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != 2 {
		t.Fatalf("JWKS after a rotation has %d keys, want 2", set.Len())
	}
	for _, tk := range []string{sess.GetAccessToken(), sess2.GetAccessToken()} {
		if _, err := jwt.Parse([]byte(tk), jwt.WithKeySet(set)); err != nil {
			t.Fatalf("after a rotation: %v", err)
		}
	}
}
