package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/server"
)

// TestDiscoveryNeedsAURLIssuer: with the default issuer ("portcullis")
// the authority has no discovery document, and says why with a reason.
// (A URL issuer's document is fetched by another authority in
// test/signals.)
func TestDiscoveryNeedsAURLIssuer(t *testing.T) {
	a := authoritytest.Start(t, authoritytest.Options{})
	h := httptest.NewServer(a.HTTPHandler())
	t.Cleanup(h.Close)
	resp, err := http.Get(h.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body server.HTTPError
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusNotFound || body.Reason != "NOT_FOUND" || body.Message == "" {
		t.Fatalf("got %d %+v, want 404 NOT_FOUND with a message", resp.StatusCode, body)
	}
}
