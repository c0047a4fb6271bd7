package main

import (
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// TestServePublicURL: the Shared Signals issuer is --public-url, and
// http://<--http-listen> without it.
func TestServePublicURL(t *testing.T) {
	for _, public := range []string{"", "https://auth.example.com"} {
		data := filepath.Join(t.TempDir(), "data")
		hl := freeAddr(t)
		_, stop := startServeConfig(t, serveConfig{dataDir: data, httpListen: hl, publicURL: public}, nil)
		_, body := get(t, "http://"+hl+"/.well-known/ssf-configuration")
		if err := stop(); err != nil {
			t.Fatalf("serve: %v", err)
		}
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		want := public
		if want == "" {
			want = "http://" + hl
		}
		if doc.Issuer != want || doc.JWKSURI != want+"/.well-known/jwks.json" {
			t.Errorf("--public-url %q: issuer %q, jwks_uri %q", public, doc.Issuer, doc.JWKSURI)
		}
	}
}

// TestServePublicURLInvalid: --public-url must be an absolute http(s) URL.
func TestServePublicURLInvalid(t *testing.T) {
	for _, bad := range []string{"auth.example.com", "ftp://auth.example.com", "https://"} {
		cfg := serveConfig{dataDir: filepath.Join(t.TempDir(), "data"), listen: "127.0.0.1:0", httpListen: freeAddr(t),
			publicURL: bad, logFormat: "json", logLevel: "info"}
		err := serve(t.Context(), cfg, io.Discard)
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), "--public-url") {
			t.Errorf("--public-url %q: %v", bad, err)
		}
	}
}
