package main

import (
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/authoritytest/testidp"
)

// TestCLIIssuers: issuers add trusts a real OpenID Provider (its keys
// fetched), refuses a duplicate and an http issuer on a non-loopback host
// with their reasons, list shows the keys and the last fetch, update
// refetches (and, once the OP is gone, list shows the error while the keys
// stay), rm removes it.
func TestCLIIssuers(t *testing.T) {
	e := newCLIEnv(t)
	idp := testidp.Start(t)
	out := e.ok("issuers", "add", idp.URL, "--tenant", "acme", "--audience", testidp.ClientID)
	if !strings.Contains(out, "trusted issuer "+idp.URL) || !strings.Contains(out, idp.KeyID()) {
		t.Fatalf("issuers add: %q", out)
	}
	code, _, errs := e.run("issuers", "add", idp.URL, "--tenant", "acme", "--audience", testidp.ClientID)
	if code != exitError || !strings.HasPrefix(errs, "portcullis: AlreadyExists ALREADY_EXISTS: ") {
		t.Fatalf("duplicate: %d %q", code, errs)
	}
	code, _, errs = e.run("issuers", "add", "http://idp.example", "--tenant", "acme", "--audience", "api")
	if code != exitError || !strings.HasPrefix(errs, "portcullis: InvalidArgument INVALID_ARGUMENT: ") {
		t.Fatalf("http issuer: %d %q", code, errs)
	}
	list := e.ok("issuers", "list")
	if !strings.Contains(list, idp.URL) || !strings.Contains(list, idp.KeyID()) || !strings.Contains(list, "LAST_SUCCESS") {
		t.Fatalf("issuers list: %q", list)
	}
	out = e.ok("revoke", "--issuer", idp.URL, "--sid", "idp-session-1", "--reason", "stolen")
	if !strings.Contains(out, "revoked session idp-session-1 of issuer "+idp.URL+" until ") {
		t.Fatalf("revoke --issuer --sid: %q", out)
	}
	if out := e.ok("revoke", "--issuer", idp.URL, "--jti", "idp-token-1"); !strings.Contains(out, "revoked token idp-token-1") {
		t.Fatalf("revoke --issuer --jti: %q", out)
	}
	if code, _, errs := e.run("revoke", "--issuer", idp.URL, "--sid", "a", "--jti", "b"); code != exitUsage {
		t.Fatalf("revoke with --sid and --jti: %d %q", code, errs)
	}
	idp.Close()
	e.ok("issuers", "update", idp.URL, "--tenant", "acme", "--audience", testidp.ClientID)
	list = e.ok("issuers", "list", "-o", "json")
	if !strings.Contains(list, `"lastError":"discovery: `) || !strings.Contains(list, idp.KeyID()) {
		t.Fatalf("issuers list after the OP went away: %q", list)
	}
	e.ok("issuers", "rm", idp.URL)
	if list := e.ok("issuers", "list", "-o", "json"); strings.TrimSpace(list) != "" {
		t.Fatalf("issuers list after rm: %q", list)
	}
}
