package agent

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/portcullis-dev/portcullis/client"
)

// introspection is an RFC 7662 response. An inactive token is
// {"active": false} and nothing else (section 2.2: nothing about why).
type introspection struct {
	Active    bool     `json:"active"`
	TokenType string   `json:"token_type,omitempty"`
	Subject   string   `json:"sub,omitempty"`
	SessionID string   `json:"sid,omitempty"`
	TenantID  string   `json:"tid,omitempty"`
	DeviceID  string   `json:"did,omitempty"`
	Issuer    string   `json:"iss,omitempty"`
	TokenID   string   `json:"jti,omitempty"`
	Audience  []string `json:"aud,omitempty"`
	Expiry    int64    `json:"exp,omitempty"`
	IssuedAt  int64    `json:"iat,omitempty"`
}

// serveIntrospect answers POST /introspect (RFC 7662) from the mirror: a
// token is active when Mirror.Check accepts it (no client address, device
// or capability: those belong to a request, not a token), so a banned
// user's, a revoked, an expired, a forged or an unknown token is
// {"active": false}. The caller authenticates with a configured secret
// (section 2.1: "the protected resource MUST authenticate"); a stale
// mirror answers 503, not a guess.
func (a *Agent) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	start := startTimer()
	if !a.introspectAllowed(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="portcullis-introspect", Basic realm="portcullis-introspect"`)
		jsonError(w, http.StatusUnauthorized, "invalid_client", "authenticate with the introspection secret")
		return
	}
	tok := r.PostFormValue("token")
	if tok == "" {
		jsonError(w, http.StatusBadRequest, "invalid_request", "no token parameter")
		return
	}
	s, err := a.mirror.Check(r.Context(), tok, client.CheckInput{})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if errors.Is(err, client.ErrMirrorStale) {
		ref := refusalOf(err)
		a.metrics.observe(doorIntrospect, false, &ref, start)
		writeRefusal(w, ref)
		return
	}
	out := introspection{}
	if err == nil {
		out = introspection{Active: true, TokenType: "Bearer", Subject: s.UserID, SessionID: s.SessionID, TenantID: s.TenantID,
			DeviceID: s.DeviceID, Issuer: a.issuer, Expiry: s.ExpireTime.Unix()}
		if a.audience != "" {
			out.Audience = []string{a.audience}
		}
		if s.Issuer != "" {
			// An external issuer's token: its own iss, jti and aud, not
			// the authority's.
			out.Issuer, out.TokenID, out.Audience = s.Issuer, s.TokenID, audienceOf(s.Claims)
		}
		if !s.IssueTime.IsZero() {
			out.IssuedAt = s.IssueTime.Unix()
		}
		a.metrics.observe(doorIntrospect, false, nil, start)
	} else {
		ref := refusalOf(err)
		a.metrics.observe(doorIntrospect, false, &ref, start)
	}
	_ = json.NewEncoder(w).Encode(out)
}

// audienceOf returns the "aud" claim of a token's JSON payload (a string
// or an array of them; RFC 7519 section 4.1.3), nil when absent.
func audienceOf(claims string) []string {
	var c struct {
		Aud json.RawMessage `json:"aud"`
	}
	if json.Unmarshal([]byte(claims), &c) != nil || len(c.Aud) == 0 {
		return nil
	}
	var one string
	if json.Unmarshal(c.Aud, &one) == nil {
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(c.Aud, &many)
	return many
}

// introspectAllowed checks the caller's credential, in constant time,
// against every configured secret: "Authorization: Bearer <secret>", or
// Basic with the secret as the password (any user name, as a client_id).
func (a *Agent) introspectAllowed(r *http.Request) bool {
	var given string
	if _, pw, ok := r.BasicAuth(); ok {
		given = pw
	} else if v := r.Header.Get("Authorization"); len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		given = strings.TrimSpace(v[7:])
	}
	if given == "" {
		return false
	}
	ok := 0
	for _, s := range a.secrets {
		ok |= subtle.ConstantTimeCompare([]byte(given), s)
	}
	return ok == 1
}

// jsonError writes an OAuth error response (RFC 6749 section 5.2).
func jsonError(w http.ResponseWriter, code int, errCode, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": errCode, "error_description": desc})
}
