package agent_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/agent"
	"github.com/portcullis-dev/portcullis/client"
)

// nginxBinary finds Debian's nginx. Absent, the test is skipped, except
// under CI=true, where .ci/run installs it and its absence is a failure.
func nginxBinary(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/nginx", "nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("nginx is not installed (.ci/run installs Debian's nginx)")
	}
	t.Skip("nginx is not installed (apt-get install nginx)")
	return ""
}

// nginxPeer is the address nginx connects to the agent from (proxy_bind),
// the one trusted proxy: the test's own client, on 127.0.0.1, is not.
const nginxPeer = "127.0.0.3"

// startNginx runs nginx as a process of the test (foreground, its prefix,
// logs and pid in a temporary directory, ports from the OS) with the
// snippets of gateways/nginx, exactly as documented but for the agent's
// address, in front of upstream. It returns nginx's base URL.
func startNginx(t testing.TB, agentAddr, upstreamAddr string) string {
	t.Helper()
	return startNginxConf(t, agentAddr, upstreamAddr, "", `
        location / {
            include %[1]s/portcullis-protect.conf;
            proxy_pass http://%[2]s;
        }
`)
}

// startNginxConf is startNginx with more of the http block (httpExtra)
// and the server's locations given, formats with the directory of the
// snippets (%[1]s) and the upstream's address (%[2]s).
func startNginxConf(t testing.TB, agentAddr, upstreamAddr, httpExtra, locations string) string {
	t.Helper()
	bin := nginxBinary(t)
	dir := t.TempDir()
	for _, name := range []string{"portcullis-upstream.conf", "portcullis-authz.conf", "portcullis-protect.conf"} {
		b, err := os.ReadFile(filepath.Join("gateways", "nginx", name))
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(b), "127.0.0.1:7480", agentAddr)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	conf := fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 128; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/portcullis-upstream.conf;
%%HTTP_EXTRA%%
    server {
        listen %[2]s;
        proxy_bind %[3]s;
        include %[1]s/portcullis-authz.conf;
%[4]s
    }
}
`, dir, addr, nginxPeer, fmt.Sprintf(locations, dir, upstreamAddr), httpExtra)
	if httpExtra != "" {
		conf = strings.Replace(conf, "%HTTP_EXTRA%", fmt.Sprintf(httpExtra, dir, upstreamAddr), 1)
	}
	conf = strings.Replace(conf, "%HTTP_EXTRA%", "", 1)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// nginx's own output goes to a file, not a pipe: cmd.Wait would wait
	// for every process holding a pipe, a worker included.
	out, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(bin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"))
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that a hang guard can end the workers too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{}) // closed when nginx has exited
	var exitErr error
	go func() { exitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// Fast shutdown (SIGTERM): the test is over, nothing is in flight.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(time.Minute):
			t.Errorf("nginx did not stop within a minute of SIGTERM")
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "error.log")); t.Failed() && len(b) > 0 {
			t.Logf("nginx error.log:\n%s", b)
		}
	})
	// Wait until nginx accepts connections (or has exited).
	deadline := time.Now().Add(time.Minute)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			o, _ := os.ReadFile(filepath.Join(dir, "stderr.log"))
			t.Fatalf("nginx exited: %v\n%s%s", exitErr, b, o)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("nginx does not accept connections after a minute")
		}
	}
	return "http://" + addr
}

// seen is what the upstream received.
type seen struct {
	User, Session, Tenant string
	HasUser, HasIssuer    bool
	Path                  string
}

// TestNginxAuthRequest puts a real nginx (auth_request to the agent) in
// front of a small upstream and drives the agent's cases through it.
func TestNginxAuthRequest(t *testing.T) {
	nginxBinary(t)
	e := startEnv(t, `
routes:
  - {method: POST, path_prefix: /api/posts, capability: post}
public:
  - {path_prefix: /public}
trusted_proxies: [`+nginxPeer+`/32]
`, client.MirrorOptions{}, agent.Options{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, has := r.Header["X-Portcullis-User"]
		_, hasIss := r.Header["X-Portcullis-Issuer"]
		_ = json.NewEncoder(w).Encode(seen{User: r.Header.Get("X-Portcullis-User"), Session: r.Header.Get("X-Portcullis-Session"),
			Tenant: r.Header.Get("X-Portcullis-Tenant"), HasUser: has, HasIssuer: hasIss, Path: r.URL.Path})
	}))
	t.Cleanup(upstream.Close)
	base := startNginx(t, strings.TrimPrefix(e.srv.URL, "http://"), strings.TrimPrefix(upstream.URL, "http://"))

	get := func(method, path, token string, hdr map[string]string) (int, http.Header, seen, refusalBody) {
		t.Helper()
		req, err := http.NewRequestWithContext(hang(t), method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var s seen
		var r refusalBody
		if resp.StatusCode == http.StatusOK {
			err = json.NewDecoder(resp.Body).Decode(&s)
		} else {
			err = json.NewDecoder(resp.Body).Decode(&r)
		}
		if err != nil {
			t.Fatalf("%s %s: %d, body: %v", method, path, resp.StatusCode, err)
		}
		return resp.StatusCode, resp.Header, s, r
	}
	wantPass := func(method, path, token, user string, hdr map[string]string) seen {
		t.Helper()
		code, _, s, r := get(method, path, token, hdr)
		if code != http.StatusOK || s.User != user {
			t.Fatalf("%s %s: %d %+v, upstream saw %+v; want 200 for %q", method, path, code, r, s, user)
		}
		return s
	}
	wantDenied := func(method, path, token string, status int, reason string, hdr map[string]string) refusalBody {
		t.Helper()
		code, h, s, r := get(method, path, token, hdr)
		if code != status || r.Reason != reason || h.Get("X-Portcullis-Reason") != reason {
			t.Fatalf("%s %s: %d %+v (header %q), upstream saw %+v; want %d %s", method, path, code, r, h.Get("X-Portcullis-Reason"), s, status, reason)
		}
		return r
	}

	alice := e.login(t, "alice", "")
	bob := e.login(t, "bob", "")

	t.Run("identity headers reach the upstream", func(t *testing.T) {
		s := wantPass("GET", "/api/posts?page=1", alice, "alice", nil)
		if s.Session == "" || s.Tenant != "public" || s.Path != "/api/posts" {
			t.Fatalf("upstream saw %+v", s)
		}
	})
	t.Run("a spoofed X-Portcullis-User never reaches the upstream", func(t *testing.T) {
		s := wantPass("GET", "/api/posts", alice, "alice", map[string]string{"X-Portcullis-User": "admin", "X-Portcullis-Tenant": "root",
			"X-Portcullis-Issuer": "https://evil.example"})
		// The authority's own token has no issuer: the client's header of
		// that name does not pass either.
		if s.Tenant != "public" || s.HasIssuer {
			t.Fatalf("the client's identity headers reached the upstream: %+v", s)
		}
		s = wantPass("GET", "/public/x", "", "", map[string]string{"X-Portcullis-User": "admin", "X-Portcullis-Issuer": "https://evil.example"})
		if s.HasUser || s.HasIssuer {
			t.Fatalf("a public request carried the client's X-Portcullis-User: %+v", s)
		}
	})
	t.Run("public path without a token", func(t *testing.T) {
		wantPass("GET", "/public/logo.png", "", "", nil)
		wantDenied("GET", "/public/../admin", "", http.StatusUnauthorized, "TOKEN_INVALID", nil)
		wantDenied("GET", "/api/posts", "", http.StatusUnauthorized, "TOKEN_INVALID", nil)
	})
	t.Run("ban at the authority: the next request is 403, no reload; lift: 200", func(t *testing.T) {
		ban := e.ban(t, userBan("alice")) // waits on the mirror's revision
		applied := time.Now()
		r := wantDenied("GET", "/api/posts", alice, http.StatusForbidden, "USER_BANNED", nil)
		t.Logf("refused through nginx %s after the mirror applied the ban", time.Since(applied))
		if r.BanID != ban.GetBanId() {
			t.Fatalf("ban_id %q, want %q", r.BanID, ban.GetBanId())
		}
		wantPass("GET", "/api/posts", bob, "bob", nil)
		e.lift(t, ban.GetBanId())
		// The ban revoked alice's session; she logs in again.
		wantDenied("GET", "/api/posts", alice, http.StatusUnauthorized, "SESSION_REVOKED", nil)
		alice = e.login(t, "alice", "")
		wantPass("GET", "/api/posts", alice, "alice", nil)
	})
	t.Run("a capability ban refuses its route only", func(t *testing.T) {
		ban := e.ban(t, userBan("bob", "post"))
		wantDenied("POST", "/api/posts", bob, http.StatusForbidden, "CAPABILITY_RESTRICTED", nil)
		wantPass("GET", "/api/posts", bob, "bob", nil)
		wantPass("POST", "/api/comments", bob, "bob", nil)
		e.lift(t, ban.GetBanId())
		wantPass("POST", "/api/posts", bob, "bob", nil)
	})
	t.Run("a spoofed X-Forwarded-For from an untrusted client is ignored", func(t *testing.T) {
		ban := e.ban(t, ipBan("203.0.113.9"))
		wantPass("GET", "/api/posts", bob, "bob", map[string]string{"X-Forwarded-For": "203.0.113.9"})
		e.lift(t, ban.GetBanId())
		// The client's real address (what nginx appended) is what counts.
		ban = e.ban(t, ipBan("127.0.0.1"))
		wantDenied("GET", "/api/posts", bob, http.StatusForbidden, "IP_BANNED", map[string]string{"X-Forwarded-For": "198.51.100.1"})
		e.lift(t, ban.GetBanId())
	})
	t.Run("a stale mirror is 503 through nginx, fail closed", func(t *testing.T) {
		e.Stop()
		e.Clock().Advance(31 * time.Second) // past the mirror's 30s bound
		wantDenied("GET", "/api/posts", bob, http.StatusServiceUnavailable, "MIRROR_STALE", nil)
	})
}
