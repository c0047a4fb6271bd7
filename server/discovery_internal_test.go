package server

import (
	"testing"
)

// TestDiscoveryOf: an http(s) issuer gets a document whose issuer is the
// issuer exactly and whose endpoints hang under it; anything a verifier
// could not fetch discovery from gets none.
func TestDiscoveryOf(t *testing.T) {
	doc, ok := discoveryOf("https://auth.example.com/tenant-a/")
	if !ok {
		t.Fatal("no document for an https issuer")
	}
	if doc.Issuer != "https://auth.example.com/tenant-a/" {
		t.Errorf("issuer = %q, want the issuer exactly (verifiers compare)", doc.Issuer)
	}
	if doc.JWKSURI != "https://auth.example.com/tenant-a/.well-known/jwks.json" {
		t.Errorf("jwks_uri = %q", doc.JWKSURI)
	}
	if doc.RevocationEndpoint != "https://auth.example.com/tenant-a/oauth2/revoke" {
		t.Errorf("revocation_endpoint = %q", doc.RevocationEndpoint)
	}
	if len(doc.SigningAlgValuesSupported) != 1 || doc.SigningAlgValuesSupported[0] != "EdDSA" {
		t.Errorf("algorithms = %v, want only EdDSA (the RSA key signs SETs, never tokens)", doc.SigningAlgValuesSupported)
	}
	for _, bad := range []string{"portcullis", "", "ftp://x", "https://", "https://a.example?x=1", "https://a.example#f", "/relative"} {
		if _, ok := discoveryOf(bad); ok {
			t.Errorf("discoveryOf(%q) gave a document", bad)
		}
	}
}
