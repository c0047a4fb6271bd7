package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/portcullis-dev/portcullis/agent"
	"github.com/portcullis-dev/portcullis/authoritytest"
)

// until waits for cond, polling, with a hang guard of a minute.
func agentUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func httpStatus(t *testing.T, req *http.Request) int {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func authzReq(t *testing.T, addr, uri string) *http.Request {
	req, err := http.NewRequest("GET", "http://"+addr+"/authz", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Original-URI", uri)
	return req
}

// TestAgentCommandReload runs `portcullis agent` in-process against a real
// authority on loopback: it becomes ready once its mirror has synced;
// SIGHUP reloads --config without dropping the mirror; a bad file keeps
// the previous configuration and logs why.
func TestAgentCommandReload(t *testing.T) {
	a := authoritytest.Start(t, authoritytest.Options{Loopback: true, Clock: authoritytest.WallClock()})
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "agent.key")
	confFile := filepath.Join(dir, "agent.yaml")
	write := func(path, s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(keyFile, a.NewAPIKey("agent", "events:watch")+"\n")
	write(confFile, "public:\n  - path_prefix: /public\n")

	logs := &syncBuffer{}
	hup := make(chan os.Signal, 1)
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan [2]string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- runAgent(ctx, agentConfig{authority: a.Addr(), apiKeyFile: keyFile, listen: "127.0.0.1:0", extAuthzListen: "127.0.0.1:0",
			configFile: confFile, staleAfter: 30 * time.Second, issuer: "portcullis", audience: "portcullis", logFormat: "text", logLevel: "info"},
			logs, hup, func(h, x string, _ *agent.Agent) { addrs <- [2]string{h, x} })
	}()
	var httpAddr, extAddr string
	select {
	case got := <-addrs:
		httpAddr, extAddr = got[0], got[1]
	case err := <-errc:
		t.Fatalf("agent: %v\n%s", err, logs)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("agent ended with %v", err)
		}
	})
	ready, _ := http.NewRequest("GET", "http://"+httpAddr+"/readyz", nil)
	agentUntil(t, "/readyz", func() bool { return httpStatus(t, ready) == http.StatusOK })
	if got := httpStatus(t, authzReq(t, httpAddr, "/public/a")); got != http.StatusOK {
		t.Fatalf("public path: %d", got)
	}
	// The ext_authz listener makes the same decisions.
	conn, err := grpc.NewClient(extAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for path, want := range map[string]codes.Code{"/public/a": codes.OK, "/private": codes.Unauthenticated} {
		resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: path}}}})
		if err != nil || codes.Code(resp.GetStatus().GetCode()) != want {
			t.Fatalf("ext_authz %s: %v, %v; want %v", path, resp, err, want)
		}
	}

	write(confFile, "public:\n  - path_prefix: /open\n")
	hup <- os.Interrupt
	agentUntil(t, "the reload", func() bool { return httpStatus(t, authzReq(t, httpAddr, "/open/a")) == http.StatusOK })
	if got := httpStatus(t, authzReq(t, httpAddr, "/public/a")); got != http.StatusUnauthorized {
		t.Fatalf("/public after the reload: %d, want 401", got)
	}

	write(confFile, "public:\n  - path_prefix: /other\nroutes:\n  - {path_prefix: /api, capability: NOT-A-NAME}\n")
	hup <- os.Interrupt
	agentUntil(t, "the refused reload's log line", func() bool { return strings.Contains(logs.String(), "keeping the previous one") })
	if got := httpStatus(t, authzReq(t, httpAddr, "/open/a")); got != http.StatusOK {
		t.Fatalf("/open after a bad reload: %d, want 200 (the previous configuration)", got)
	}
	if got := httpStatus(t, authzReq(t, httpAddr, "/other/a")); got != http.StatusUnauthorized {
		t.Fatalf("/other after a bad reload: %d, want 401", got)
	}
	if !strings.Contains(logs.String(), "NOT-A-NAME") {
		t.Errorf("the log does not say why:\n%s", logs)
	}
	if strings.Count(logs.String(), "level=INFO msg=\"portcullis agent listening\"") != 1 {
		t.Errorf("want one start:\n%s", logs)
	}
}

// TestAgentCommandRefusedKey: a key the authority refuses stops the agent
// at start, with the reason.
func TestAgentCommandRefusedKey(t *testing.T) {
	a := authoritytest.Start(t, authoritytest.Options{Loopback: true})
	keyFile := filepath.Join(t.TempDir(), "agent.key")
	if err := os.WriteFile(keyFile, []byte("pcl_nope_nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := runAgent(context.Background(), agentConfig{authority: a.Addr(), apiKeyFile: keyFile, listen: "127.0.0.1:0",
		staleAfter: time.Second, logFormat: "text", logLevel: "info"}, &syncBuffer{}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "refuses the API key") {
		t.Fatalf("got %v", err)
	}
}
