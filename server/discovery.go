package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/portcullis-dev/portcullis/internal/authority"
)

// Discovery is the OpenID Connect discovery document of the authority's
// access tokens (OpenID Connect Discovery 1.0 §3, with the OAuth members of
// RFC 8414): enough for a verifier that finds keys through discovery —
// another Portcullis authority trusting this one as an external issuer,
// an API gateway's JWT filter — to verify them. Portcullis is not an
// OpenID Provider (it has no authorization endpoint: sessions are created
// by the application's backend), so only the members that describe its
// tokens are given.
type Discovery struct {
	Issuer                    string   `json:"issuer"`
	JWKSURI                   string   `json:"jwks_uri"`
	SigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
	SubjectTypesSupported     []string `json:"subject_types_supported"`
	RevocationEndpoint        string   `json:"revocation_endpoint"`
	RevocationEndpointAuth    []string `json:"revocation_endpoint_auth_methods_supported"`
	ClaimsSupported           []string `json:"claims_supported"`
}

// discoveryOf returns the document of the issuer, which must be an http or
// https URL without query or fragment: discovery is served at the
// issuer's own URL, and a verifier compares the two.
func discoveryOf(issuer string) (Discovery, bool) {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return Discovery{}, false
	}
	base := strings.TrimSuffix(issuer, "/")
	return Discovery{
		Issuer:                    issuer,
		JWKSURI:                   base + "/.well-known/jwks.json",
		SigningAlgValuesSupported: []string{"EdDSA"},
		SubjectTypesSupported:     []string{"public"},
		RevocationEndpoint:        base + "/oauth2/revoke",
		// An API key as the Basic password; a Bearer API key works too,
		// which has no registered name.
		RevocationEndpointAuth: []string{"client_secret_basic"},
		ClaimsSupported:        []string{"iss", "sub", "aud", "exp", "iat", "jti", "sid", "tid", "did"},
	}, true
}

// serveDiscovery answers GET /.well-known/openid-configuration when the
// authority's issuer (serve --issuer) is a URL; with another issuer (the
// default "portcullis") there is no place a verifier could find it, and
// the answer is 404 NOT_FOUND saying so.
func (s *Server) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	issuer := s.auth.Config().Issuer
	doc, ok := discoveryOf(issuer)
	if !ok {
		s.writeHTTPError(w, r, fmt.Errorf("%w: the issuer %q is not an http(s) URL, so it has no discovery document (serve --issuer https://<this listener>)",
			authority.ErrNotFound, issuer), nil)
		return
	}
	w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(JWKSMaxAge.Seconds())))
	writeJSONStatus(w, http.StatusOK, doc)
}
