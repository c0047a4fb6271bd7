package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// External algorithms: the asymmetric JWS algorithms an external issuer
// may use. "none" and the HMAC family are never accepted: with HMAC, a
// verifier holding the issuer's public key could be handed a token "signed"
// with that public key as the secret.
const (
	AlgRS256 = "RS256"
	AlgPS256 = "PS256"
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
)

// ExternalAlgorithms lists the algorithms an external issuer may use.
var ExternalAlgorithms = []string{AlgRS256, AlgPS256, AlgES256, AlgEdDSA}

// minRSABits refuses RSA keys too short to trust (RFC 7518 3.3: 2048).
const minRSABits = 2048

// ErrUnknownIssuer: the token's "iss" is not a trusted external issuer.
// It wraps ErrInvalid.
var ErrUnknownIssuer = fmt.Errorf("%w: issuer not trusted", ErrInvalid)

// ExternalIssuer is what a verifier knows of a trusted external issuer.
type ExternalIssuer struct {
	Issuer    string   // exactly the tokens' "iss"
	Audiences []string // "aud" must contain one
	// UserClaim and SessionClaim name the claims carrying the user and the
	// session; "" means "sub" and "sid".
	UserClaim    string
	SessionClaim string
	Leeway       time.Duration // tolerated clock skew on exp, nbf, iat
	MaxLifetime  time.Duration // bound on exp - iat (exp - now without iat); 0: none
	Keys         map[string]ExternalKey
}

// ExternalKey is one public key of an external issuer and the algorithms
// it may verify: the algorithm is bound to the key, so a token's header
// can only choose among them.
type ExternalKey struct {
	Key        crypto.PublicKey // *rsa.PublicKey, *ecdsa.PublicKey (P-256) or ed25519.PublicKey
	Algorithms []string
}

// ParseExternalKey parses a PKIX (SubjectPublicKeyInfo) DER public key and
// keeps the algorithms of algs its type can verify; it fails when none
// remains, or the key is of another type, an RSA key shorter than 2048
// bits, or an EC key off P-256.
func ParseExternalKey(der []byte, algs []string) (ExternalKey, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return ExternalKey{}, fmt.Errorf("parse public key: %w", err)
	}
	var fit []string
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return ExternalKey{}, fmt.Errorf("RSA key of %d bits: at least %d needed", k.N.BitLen(), minRSABits)
		}
		fit = []string{AlgRS256, AlgPS256}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return ExternalKey{}, fmt.Errorf("EC key on %s: only P-256 (ES256) is accepted", k.Curve.Params().Name)
		}
		fit = []string{AlgES256}
	case ed25519.PublicKey:
		fit = []string{AlgEdDSA}
	default:
		return ExternalKey{}, fmt.Errorf("unsupported key type %T", pub)
	}
	var out []string
	for _, a := range algs {
		if slices.Contains(fit, a) && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return ExternalKey{}, fmt.Errorf("key of type %T verifies none of %v", pub, algs)
	}
	return ExternalKey{Key: pub, Algorithms: out}, nil
}

// ExternalClaims are the verified claims of an external token.
type ExternalClaims struct {
	Issuer     string
	UserID     string // the issuer's user claim
	SessionID  string // the issuer's session claim; "" when absent
	TokenID    string // "jti"; "" when absent
	ExpireTime time.Time
	IssueTime  time.Time // zero when absent
	// Raw is the token's JSON payload, every claim, for the service to
	// decode what it needs.
	Raw json.RawMessage
}

// externalPayload is what VerifyExternal reads of the claims itself.
// Times are read as float64 seconds (what encoding/json makes of a JSON
// number, as jwt.NumericDate reads them) and aud as a string or an array
// of strings (audience), without golang-jwt's per-claim allocations.
type externalPayload struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	SessionID string   `json:"sid"`
	ID        string   `json:"jti"`
	Audience  audience `json:"aud"`
	ExpiresAt *float64 `json:"exp"`
	NotBefore *float64 `json:"nbf"`
	IssuedAt  *float64 `json:"iat"`
}

// audience is "aud": a string or an array of strings (RFC 7519 4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	*a = list
	return nil
}

// secondsTime converts NumericDate seconds into a time as golang-jwt does
// (jwt.NewNumericDate of the seconds, at its default TimePrecision of a
// second).
func secondsTime(f float64) time.Time {
	whole, frac := math.Modf(f)
	return time.Unix(int64(whole), int64(frac*1e9)).Truncate(jwt.TimePrecision)
}

// PeekHeader returns a token's unverified "alg" and "kid" ("" when
// missing): enough to tell which verifier it is for.
func PeekHeader(tok string) (alg, kid string) {
	dot := strings.IndexByte(tok, '.')
	if dot < 0 {
		return "", ""
	}
	var hbuf [256]byte
	h, err := decodeSegment(hbuf[:], tok[:dot])
	if err != nil {
		return "", ""
	}
	alg, kid, _, _ = decodeHeader(h)
	return alg, kid
}

// VerifyExternal verifies a token of an external issuer: issuer chooses
// the issuer by the token's "iss" (false: refused with ErrUnknownIssuer);
// the key is the one the header's "kid" names among that issuer's keys
// only, and the header's "alg" must be one the key is bound to; then exp
// (required), nbf, iat (with the issuer's leeway), the lifetime bound, aud
// and the user claim. Errors wrap ErrExpired or ErrInvalid. The signature
// is checked by golang-jwt's signing methods (the same library Sign uses).
func VerifyExternal(tok string, now time.Time, issuer func(iss string) (*ExternalIssuer, bool)) (*ExternalClaims, error) {
	dot1 := strings.IndexByte(tok, '.')
	dot2 := -1
	if dot1 >= 0 {
		if d := strings.IndexByte(tok[dot1+1:], '.'); d >= 0 {
			dot2 = dot1 + 1 + d
		}
	}
	if dot2 < 0 || strings.IndexByte(tok[dot2+1:], '.') >= 0 {
		return nil, invalidf("token contains an invalid number of segments")
	}
	parts := [3]string{tok[:dot1], tok[dot1+1 : dot2], tok[dot2+1:]}
	var hbuf [256]byte
	header, err := decodeSegment(hbuf[:], parts[0])
	if err != nil {
		return nil, invalidf("could not base64 decode header: %v", err)
	}
	alg, kid, crit, err := decodeHeader(header)
	if err != nil {
		return nil, invalidf("could not JSON decode header: %v", err)
	}
	payload, err := decodeSegment(nil, parts[1])
	if err != nil {
		return nil, invalidf("could not base64 decode claims: %v", err)
	}
	p, err := decodePayload(payload) // extclaims.go
	if err != nil {
		return nil, invalidf("could not JSON decode claims: %v", err)
	}
	is, ok := issuer(p.Issuer)
	if !ok {
		return nil, fmt.Errorf("%w: %.200q", ErrUnknownIssuer, p.Issuer)
	}
	if crit {
		return nil, invalidf("%v", errCrit)
	}
	if kid == "" {
		return nil, invalidf("no kid header")
	}
	key, ok := is.Keys[kid]
	if !ok {
		return nil, invalidf("unknown signing key %.100q of issuer %s", kid, is.Issuer)
	}
	if !slices.Contains(key.Algorithms, alg) {
		return nil, invalidf("signing method %.20q is not one of key %s: %v", alg, kid, key.Algorithms)
	}
	var sbuf [512]byte // an RSA-4096 signature
	sig, err := decodeSegment(sbuf[:], parts[2])
	if err != nil {
		return nil, invalidf("could not base64 decode signature: %v", err)
	}
	method := jwt.GetSigningMethod(alg)
	if method == nil {
		return nil, invalidf("signing method %q is not available", alg)
	}
	if err := method.Verify(tok[:dot2], sig, key.Key); err != nil {
		return nil, invalidf("signature is invalid")
	}
	c := &ExternalClaims{Issuer: p.Issuer, TokenID: p.ID, Raw: json.RawMessage(payload)}
	if err := checkExternal(&p, is, now); err != nil {
		return nil, err
	}
	c.ExpireTime = secondsTime(*p.ExpiresAt).UTC()
	if p.IssuedAt != nil {
		c.IssueTime = secondsTime(*p.IssuedAt).UTC()
	}
	c.UserID, c.SessionID = p.Subject, p.SessionID
	if (is.UserClaim != "" && is.UserClaim != "sub") || (is.SessionClaim != "" && is.SessionClaim != "sid") {
		var all map[string]json.RawMessage
		if err := json.Unmarshal(payload, &all); err != nil {
			return nil, invalidf("could not JSON decode claims: %v", err)
		}
		if is.UserClaim != "" && is.UserClaim != "sub" {
			c.UserID = stringClaim(all[is.UserClaim])
		}
		if is.SessionClaim != "" && is.SessionClaim != "sid" {
			c.SessionID = stringClaim(all[is.SessionClaim])
		}
	}
	if c.UserID == "" {
		return nil, invalidf("no user claim %q", cmpOr(is.UserClaim, "sub"))
	}
	return c, nil
}

// checkExternal applies the time, lifetime and audience checks.
func checkExternal(p *externalPayload, is *ExternalIssuer, now time.Time) error {
	lee := is.Leeway
	if p.ExpiresAt == nil {
		return invalidf("exp claim is required")
	}
	exp := secondsTime(*p.ExpiresAt)
	switch {
	case !now.Before(exp.Add(lee)):
		return ErrExpired
	case p.NotBefore != nil && now.Add(lee).Before(secondsTime(*p.NotBefore)):
		return invalidf("token is not valid yet")
	case p.IssuedAt != nil && now.Add(lee).Before(secondsTime(*p.IssuedAt)):
		return invalidf("token used before issued")
	}
	if is.MaxLifetime > 0 {
		from := now
		if p.IssuedAt != nil {
			from = secondsTime(*p.IssuedAt)
		}
		if exp.Sub(from) > is.MaxLifetime+lee {
			return invalidf("token lives longer than the issuer's max token lifetime %s", is.MaxLifetime)
		}
	}
	for _, a := range p.Audience {
		if slices.Contains(is.Audiences, a) {
			return nil
		}
	}
	return invalidf("token has invalid audience")
}

// stringClaim is a claim's value when it is a JSON string, else "".
func stringClaim(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(bytes.TrimSpace(raw), &s) != nil {
		return ""
	}
	return s
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
