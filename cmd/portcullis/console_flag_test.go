package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServeConsoleOnLoopbackByDefault(t *testing.T) {
	_, base := startHTTPEnv(t)
	_, body := get(t, base+"/console/login")
	if !strings.Contains(string(body), `id="login-form"`) {
		t.Fatalf("/console/login on a loopback HTTP listener does not serve the sign-in page:\n%s", body)
	}
}

func TestServeConsoleOff(t *testing.T) {
	hl := freeAddr(t)
	_, stop := startServeConfig(t, serveConfig{dataDir: filepath.Join(t.TempDir(), "data"), httpListen: hl, console: "off"}, nil)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	resp, err := http.Get("http://" + hl + "/console/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/console/login under --console off: %s, want 404", resp.Status)
	}
}

func TestConsoleFlag(t *testing.T) {
	for _, c := range []struct {
		flag, listen string
		want         bool
	}{
		{"auto", "127.0.0.1:7471", true},
		{"auto", "[::1]:7471", true},
		{"auto", "0.0.0.0:7471", false},
		{"auto", "10.0.0.5:7471", false},
		{"on", "10.0.0.5:7471", true},
		{"off", "127.0.0.1:7471", false},
	} {
		got, err := consoleOn(c.flag, c.listen)
		if err != nil || got != c.want {
			t.Errorf("--console %s with --http-listen %s: %v, %v; want %v", c.flag, c.listen, got, err, c.want)
		}
	}
	var usage usageError
	if _, err := consoleOn("yes", "127.0.0.1:7471"); !errors.As(err, &usage) {
		t.Errorf("--console yes: %v, want a usage error", err)
	}
	// serve refuses it before it opens the store or listens.
	data := filepath.Join(t.TempDir(), "data")
	err := serve(context.Background(), serveConfig{listen: "127.0.0.1:0", httpListen: "127.0.0.1:0", dataDir: data,
		logFormat: "text", logLevel: "error", console: "yes"}, io.Discard)
	if !errors.As(err, &usage) {
		t.Errorf("serve --console yes: %v, want a usage error", err)
	}
	if _, statErr := os.Stat(data); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("serve --console yes created the data directory (%v): it should refuse first", statErr)
	}
}
