package storage

import "time"

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
