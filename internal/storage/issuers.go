package storage

import (
	"fmt"
	"time"
)

// Issuer is a trusted external OpenID Connect issuer: its settings, the
// public keys last fetched from its JWKS, and how the fetches went. It is
// keyed by URL, exactly the "iss" of its tokens.
type Issuer struct {
	URL       string
	TenantID  string   // its users' tenant
	Audiences []string // a token's aud must contain one
	// UserClaim and SessionClaim name the claims that carry the user and
	// the session ("sub" and "sid" by default; the domain fills them in).
	UserClaim    string
	SessionClaim string
	Algorithms   []string // among RS256, PS256, ES256, EdDSA
	Leeway       time.Duration
	// MaxTokenLifetime bounds exp - iat of its tokens, and so how long a
	// revocation of one of its sessions or tokens must be kept.
	MaxTokenLifetime time.Duration

	CreateTime time.Time
	UpdateTime time.Time // settings or keys last changed
	CreatedBy  string

	JWKSURI string      // from the discovery document
	Keys    []IssuerKey // the JWKS's usable keys, as last fetched

	// The fetch status: written by the authority's fetcher, without an
	// event (mirrors do not need it).
	LastSuccessTime time.Time
	LastErrorTime   time.Time // zero once a fetch succeeds again
	LastError       string
	NextFetchTime   time.Time
}

// IssuerKey is one public key of an external issuer.
type IssuerKey struct {
	ID         string   // the JWK kid
	Algorithms []string // what it may verify (bound to the key, not the token)
	PublicKey  []byte   // PKIX DER
}

// UTC returns i with every time in UTC.
func (i Issuer) UTC() Issuer {
	utc(&i.CreateTime, &i.UpdateTime, &i.LastSuccessTime, &i.LastErrorTime, &i.NextFetchTime)
	return i
}

// CheckKeys checks the issuer's key (its URL).
func (i Issuer) CheckKeys() error { return checkKeyPart("issuer URL", i.URL, false) }

// Event kinds of external issuers. Their payload is Event.Issuer, without
// the fetch status; a deletion carries only the URL.
const (
	EventIssuerUpdated EventKind = "issuer.updated"
	EventIssuerDeleted EventKind = "issuer.deleted"
)

// ExternalRevocation revokes one session (by the issuer's session claim)
// or one token (by its jti) of an external issuer. It is kept until
// KeepUntil, when no token it refuses can still be valid (the issuer's
// max token lifetime and leeway after the revocation), then swept.
type ExternalRevocation struct {
	Issuer     string
	SessionID  string // the session claim's value; "" when TokenID is set
	TokenID    string // the jti; "" when SessionID is set
	TenantID   string // the issuer's tenant at the time
	RevokeTime time.Time
	KeepUntil  time.Time
	Reason     string
	RevokedBy  string
}

// Key is the revocation's key: issuer, kind and value joined by NUL (none
// of them may contain one).
func (r ExternalRevocation) Key() string {
	if r.TokenID != "" {
		return ExternalRevocationKey(r.Issuer, "", r.TokenID)
	}
	return ExternalRevocationKey(r.Issuer, r.SessionID, "")
}

// ExternalRevocationKey is the key of the revocation of an issuer's
// session sid, or (sid "") of its token jti.
func ExternalRevocationKey(issuer, sid, jti string) string {
	if jti != "" {
		return issuer + "\x00jti\x00" + jti
	}
	return issuer + "\x00sid\x00" + sid
}

// UTC returns r with every time in UTC.
func (r ExternalRevocation) UTC() ExternalRevocation {
	utc(&r.RevokeTime, &r.KeepUntil)
	return r
}

// CheckKeys checks the fields of the revocation's key: an issuer and
// exactly one of SessionID and TokenID.
func (r ExternalRevocation) CheckKeys() error {
	if err := keyParts("issuer URL", r.Issuer); err != nil {
		return err
	}
	if (r.SessionID == "") == (r.TokenID == "") {
		return fmt.Errorf("%w: an external revocation names a session or a token, exactly one", ErrInvalidRecord)
	}
	if err := checkKeyPart("session ID", r.SessionID, true); err != nil {
		return err
	}
	return checkKeyPart("token ID", r.TokenID, true)
}

// EventExternalRevoked: an external issuer's session or token was
// revoked. Its payload is Event.Revocation.
const EventExternalRevoked EventKind = "external.revoked"
