package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRPCLogLine: one JSON line per RPC with method, code, duration, the
// caller's key name and the tenant; never a secret.
func TestRPCLogLine(t *testing.T) {
	var logs syncBuffer
	data := filepath.Join(t.TempDir(), "data")
	addr, stop := startServeConfig(t, serveConfig{dataDir: data}, &logs)
	e := &cliEnv{t: t, addr: addr, data: data}
	e.ok("ban", "--user", "l1", "--tenant", "acme", "--reason", "spam")
	e.run("bans", "--api-key", "wrong-key")
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	var ban, denied map[string]any
	for _, line := range strings.Split(logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		switch m["grpc.method"] {
		case "CreateBan":
			ban = m
		case "ListBans":
			denied = m
		}
	}
	if ban == nil || denied == nil {
		t.Fatalf("no log line for CreateBan or ListBans in:\n%s", logs.String())
	}
	for k, want := range map[string]any{"grpc.service": "portcullis.v1.BanService", "grpc.code": "OK", "caller": "bootstrap-admin", "tenant": "acme"} {
		if ban[k] != want {
			t.Errorf("CreateBan log %s = %v, want %v (line %v)", k, ban[k], want, ban)
		}
	}
	if _, ok := ban["grpc.time_ms"]; !ok {
		t.Errorf("CreateBan log line has no duration: %v", ban)
	}
	if denied["grpc.code"] != "Unauthenticated" {
		t.Errorf("refused ListBans logged code %v", denied["grpc.code"])
	}
	key := strings.TrimSpace(string(mustRead(t, filepath.Join(data, "admin.key"))))
	if strings.Contains(logs.String(), key) || strings.Contains(logs.String(), "wrong-key") {
		t.Fatal("a key appears in the log")
	}
}
