package agent_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/agent"
	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// env is a real authority (authoritytest: a bbolt file, the real server),
// a mirror following it, and an agent deciding from the mirror, served on
// a loopback port.
type env struct {
	*authoritytest.Authority
	admin  *client.Client
	mirror *client.Mirror
	agent  *agent.Agent
	srv    *httptest.Server
}

// testConfig routes POST /api/posts to capability "post" and makes
// /public public; the agent's peer (the test, on 127.0.0.1) is a trusted
// proxy, as a gateway on the same host is.
const testConfig = `
routes:
  - {method: POST, path_prefix: /api/posts, capability: post}
public:
  - {path_prefix: /public}
trusted_proxies: [127.0.0.1/32]
device_header: X-Device-Id
`

func startEnv(t testing.TB, yamlConfig string, mopts client.MirrorOptions, aopts agent.Options) *env {
	t.Helper()
	a := authoritytest.Start(t, authoritytest.Options{})
	return startEnvOn(t, a, a.Dial(), yamlConfig, mopts, aopts)
}

// startEnvOn is startEnv with an authority of the caller's (admin dialed
// to it).
func startEnvOn(t testing.TB, a *authoritytest.Authority, admin *client.Client, yamlConfig string, mopts client.MirrorOptions, aopts agent.Options) *env {
	t.Helper()
	e := &env{Authority: a, admin: admin}
	if mopts.Clock == nil {
		mopts.Clock = a.Clock().Now
	}
	mopts.Logger = testLogger(t)
	e.mirror = client.NewMirror(a.Dial(client.WithAPIKey(a.NewAPIKey("agent", "events:watch"))), mopts)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); e.mirror.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-ran })
	if err := e.mirror.WaitSynced(hang(t)); err != nil {
		t.Fatal(err)
	}
	cfg, err := agent.ParseConfig([]byte(yamlConfig))
	if err != nil {
		t.Fatal(err)
	}
	aopts.Config = cfg
	aopts.StaleAfter = mopts.StaleAfter
	aopts.Logger = testLogger(t)
	if e.agent, err = agent.New(e.mirror, aopts); err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewUnstartedServer(e.agent.Handler())
	e.srv.Config.ConnContext = agent.ConnContext
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	return e
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// hang bounds a test's wait on a condition: generous, for a busy machine.
func hang(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// login creates a session and returns its access token.
func (e *env) login(t testing.TB, user, device string) string {
	t.Helper()
	resp, err := e.admin.Sessions.CreateSession(context.Background(), &pb.CreateSessionRequest{UserId: user, DeviceId: device})
	if err != nil {
		t.Fatalf("CreateSession(%s): %v", user, err)
	}
	return resp.GetAccessToken()
}

// ban creates a ban and waits until the mirror has applied it (its
// revision, not a sleep).
func (e *env) ban(t testing.TB, req *pb.CreateBanRequest) *pb.Ban {
	t.Helper()
	resp, err := e.admin.Bans.CreateBan(context.Background(), req)
	if err != nil {
		t.Fatalf("CreateBan: %v", err)
	}
	e.caughtUp(t)
	return resp.GetBan()
}

func (e *env) lift(t testing.TB, banID string) {
	t.Helper()
	if _, err := e.admin.Bans.LiftBan(context.Background(), &pb.LiftBanRequest{BanId: banID, Reason: "appeal"}); err != nil {
		t.Fatalf("LiftBan: %v", err)
	}
	e.caughtUp(t)
}

// caughtUp waits until the mirror has applied everything the authority
// has committed.
func (e *env) caughtUp(t testing.TB) {
	t.Helper()
	if err := e.mirror.WaitRevision(hang(t), e.Revision()); err != nil {
		t.Fatalf("mirror at revision %d, authority at %d: %v", e.mirror.Revision(), e.Revision(), err)
	}
}

func userBan(user string, caps ...string) *pb.CreateBanRequest {
	return &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: user}}, Reason: "spam", Capabilities: caps}
}

func ipBan(ip string) *pb.CreateBanRequest {
	return &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_Ip{Ip: ip}}, Reason: "scraper"}
}

// answer is what a front door answered, in HTTP terms.
type answer struct {
	status int
	header http.Header
	body   refusalBody
}

type refusalBody struct {
	Code       int    `json:"code"`
	Reason     string `json:"reason"`
	Message    string `json:"message"`
	BanID      string `json:"ban_id"`
	ExpireTime string `json:"expire_time"`
	Capability string `json:"capability"`
}

// authz asks the agent's /authz about method and uri with the given
// headers (nginx's convention), from the test's loopback address.
func (e *env) authz(t testing.TB, method, uri, token string, hdr map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/authz", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Original-Method", method)
	req.Header.Set("X-Original-URI", uri)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return do(t, http.DefaultClient, req)
}

func do(t testing.TB, c *http.Client, req *http.Request) answer {
	t.Helper()
	resp, err := c.Do(req.WithContext(hang(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	ans := answer{status: resp.StatusCode, header: resp.Header}
	if resp.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(b, &ans.body); err != nil {
			t.Fatalf("body %q: %v", b, err)
		}
	}
	return ans
}

// wantRefused fails unless a is a refusal with status and reason (in the
// header and the JSON body alike).
func wantRefused(t testing.TB, a answer, status int, reason string) {
	t.Helper()
	if a.status != status || a.header.Get("X-Portcullis-Reason") != reason || a.body.Reason != reason || a.body.Code != status {
		t.Fatalf("got %d, reason header %q, body %+v; want %d %s", a.status, a.header.Get("X-Portcullis-Reason"), a.body, status, reason)
	}
}

// wantAllowed fails unless a admitted user (empty identity for a public
// route).
func wantAllowed(t testing.TB, a answer, user string) {
	t.Helper()
	if a.status != http.StatusOK || a.header.Get("X-Portcullis-User") != user {
		t.Fatalf("got %d, user %q, body %+v; want 200 for %q", a.status, a.header.Get("X-Portcullis-User"), a.body, user)
	}
	if user != "" && (a.header.Get("X-Portcullis-Session") == "" || a.header.Get("X-Portcullis-Tenant") != "public") {
		t.Fatalf("identity headers: %v", a.header)
	}
}

// localAddr is a dialer from a given loopback address, so that a test
// can be a client other than the trusted 127.0.0.1.
func fromAddr(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}
