package token

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Algorithm is the JWT "alg" of every Portcullis access token.
const Algorithm = "EdDSA"

// Errors returned by Verify. Compare with errors.Is.
var (
	// ErrExpired: the token was valid but its exp has passed.
	ErrExpired = errors.New("access token expired")
	// ErrInvalid: the token is malformed, forged, from another issuer, or
	// signed by a key the verifier does not know.
	ErrInvalid = errors.New("access token invalid")
)

// errCrit refuses a token whose header has a "crit" parameter.
var errCrit = errors.New(`"crit" header: no extension is understood`)

// Claims are the claims of an access token.
type Claims struct {
	SessionID string `json:"sid"`
	TenantID  string `json:"tid"`
	DeviceID  string `json:"did,omitempty"`
	jwt.RegisteredClaims
}

// UserID is the "sub" claim.
func (c *Claims) UserID() string { return c.Subject }

// ExpireTime is the "exp" claim (zero if absent).
func (c *Claims) ExpireTime() time.Time {
	if c.ExpiresAt == nil {
		return time.Time{}
	}
	return c.ExpiresAt.Time
}

// Sign returns the compact JWT of claims, signed by key and naming keyID.
func Sign(claims *Claims, keyID string, key ed25519.PrivateKey) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = keyID
	s, err := t.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return s, nil
}

// KeyLookup returns the public key with the given kid, or false.
type KeyLookup func(keyID string) (ed25519.PublicKey, bool)

// Option is a further check of Verify.
type Option struct{ audience string }

// WithAudience requires the token's "aud" claim (a string, or an array of
// strings) to contain aud, as RFC 7519 4.1.3 and RFC 8725 3.9 say a
// recipient checks: a token minted for another audience by the same
// issuer is refused. The authority sets it from its --audience (default
// "portcullis"); the Mirror checks MirrorOptions.Audience (same default).
// An empty aud checks nothing.
func WithAudience(aud string) Option { return Option{audience: aud} }

// audienceOf is the audience the options require ("" for none).
func audienceOf(opts []Option) string {
	var aud string
	for _, o := range opts {
		if o.audience != "" {
			aud = o.audience
		}
	}
	return aud
}
