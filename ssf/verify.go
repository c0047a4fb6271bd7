package ssf

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// RFC 8935 §2.4 error codes, carried by VerifyError.Code.
const (
	CodeInvalidRequest  = "invalid_request"  // not a SET, malformed, or its claims break the rules
	CodeInvalidKey      = "invalid_key"      // unknown kid, algorithm not bound to the key, bad signature
	CodeInvalidIssuer   = "invalid_issuer"   // iss is not the transmitter's
	CodeInvalidAudience = "invalid_audience" // aud does not name us
)

// Defaults of VerifyOptions' window.
const (
	DefaultMaxAge  = 24 * time.Hour
	DefaultMaxSkew = 5 * time.Minute
	// MaxTokenSize bounds the compact JWS Verify reads.
	MaxTokenSize = 64 << 10
)

// VerifyOptions says what Verify accepts.
type VerifyOptions struct {
	Issuer   string // the iss the SET must carry; required
	Audience string // a value aud must contain; required
	// Key returns the public key of kid and the algorithms it is bound to;
	// ok false for an unknown kid.
	Key func(kid string) (pub crypto.PublicKey, algs []string, ok bool)
	Now time.Time // zero: time.Now()
	// MaxAge: iat older than Now-MaxAge is refused (zero: DefaultMaxAge).
	MaxAge time.Duration
	// MaxSkew: iat later than Now+MaxSkew is refused (zero: DefaultMaxSkew).
	MaxSkew time.Duration
}

// VerifyError is why Verify refused a SET; Code is the RFC 8935 err value
// a push endpoint answers with.
type VerifyError struct {
	Code string
	Msg  string
}

func (e *VerifyError) Error() string { return "ssf: " + e.Code + ": " + e.Msg }

func refuse(code, format string, args ...any) *VerifyError {
	return &VerifyError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// signingMethods are the JWS algorithms Verify knows; "none" is not one.
var signingMethods = map[string]jwt.SigningMethod{
	AlgEdDSA: jwt.SigningMethodEdDSA,
	AlgRS256: jwt.SigningMethodRS256,
	AlgES256: jwt.SigningMethodES256,
}

// b64d decodes strict base64url without padding: a token has one spelling.
var b64d = base64.RawURLEncoding.Strict()

// Verify checks a compact JWS SET and returns its claims. Every refusal is
// a *VerifyError; the signature is checked before any claim, so a claim
// error never reveals anything about an unsigned token.
func Verify(raw string, o VerifyOptions) (SET, error) {
	if o.Key == nil || o.Issuer == "" || o.Audience == "" {
		return SET{}, refuse(CodeInvalidRequest, "the verifier has no key source, issuer or audience")
	}
	if len(raw) > MaxTokenSize {
		return SET{}, refuse(CodeInvalidRequest, "the SET is larger than %d bytes", MaxTokenSize)
	}
	parts := strings.Split(strings.TrimSpace(raw), ".")
	if len(parts) != 3 {
		return SET{}, refuse(CodeInvalidRequest, "not a compact JWS (%d parts; an encrypted SET is not accepted)", len(parts))
	}
	hb, err := b64d.DecodeString(parts[0])
	if err != nil {
		return SET{}, refuse(CodeInvalidRequest, "header: %v", err)
	}
	var h struct {
		header
		Crit json.RawMessage `json:"crit"`
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return SET{}, refuse(CodeInvalidRequest, "header: %v", err)
	}
	if len(h.Crit) > 0 {
		return SET{}, refuse(CodeInvalidRequest, "header: crit extensions are not supported")
	}
	if !typOK(h.Typ) {
		return SET{}, refuse(CodeInvalidRequest, "header: typ %.60q is not %s", h.Typ, TokenType)
	}
	method, known := signingMethods[h.Alg]
	if !known {
		return SET{}, refuse(CodeInvalidRequest, "header: alg %.40q is not a signature algorithm accepted here (unsigned SETs are refused)", h.Alg)
	}
	pub, algs, ok := o.Key(h.Kid)
	if !ok {
		return SET{}, refuse(CodeInvalidKey, "unknown kid %.100q", h.Kid)
	}
	if !slices.Contains(algs, h.Alg) {
		return SET{}, refuse(CodeInvalidKey, "key %.100q is not bound to alg %s", h.Kid, h.Alg)
	}
	if rk, isRSA := pub.(*rsa.PublicKey); isRSA && rk.N.BitLen() < 2048 {
		return SET{}, refuse(CodeInvalidKey, "key %.100q: RSA keys of fewer than 2048 bits are refused", h.Kid)
	}
	sig, err := b64d.DecodeString(parts[2])
	if err != nil {
		return SET{}, refuse(CodeInvalidRequest, "signature: %v", err)
	}
	if err := method.Verify(parts[0]+"."+parts[1], sig, pub); err != nil {
		return SET{}, refuse(CodeInvalidKey, "signature does not verify with key %.100q", h.Kid)
	}
	pb, err := b64d.DecodeString(parts[1])
	if err != nil {
		return SET{}, refuse(CodeInvalidRequest, "payload: %v", err)
	}
	var set SET
	dec := json.NewDecoder(bytes.NewReader(pb))
	if err := dec.Decode(&set); err != nil || dec.More() {
		return SET{}, refuse(CodeInvalidRequest, "payload is not a JSON object of SET claims: %v", err)
	}
	return set, checkClaims(set, o)
}

// typOK follows RFC 8417 §2.3 ("typ" SHOULD be "secevent+jwt"): an absent
// typ is accepted, another value is not. Media types compare without case
// and may carry the "application/" prefix (RFC 7515 §4.1.9).
func typOK(typ string) bool {
	t := strings.ToLower(typ)
	return t == "" || t == TokenType || t == ContentType
}

func checkClaims(set SET, o VerifyOptions) error {
	if set.Issuer != o.Issuer {
		return refuse(CodeInvalidIssuer, "iss %.200q is not %q", set.Issuer, o.Issuer)
	}
	if !slices.Contains(set.Audience, o.Audience) {
		return refuse(CodeInvalidAudience, "aud does not contain %q", o.Audience)
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	maxAge, maxSkew := o.MaxAge, o.MaxSkew
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	if maxSkew <= 0 {
		maxSkew = DefaultMaxSkew
	}
	switch {
	case set.IssuedAt.IsZero():
		return refuse(CodeInvalidRequest, "iat is missing")
	case set.IssuedAt.Before(now.Add(-maxAge)):
		return refuse(CodeInvalidRequest, "iat %s is older than %s", set.IssuedAt.UTC().Format(time.RFC3339), maxAge)
	case set.IssuedAt.After(now.Add(maxSkew)):
		return refuse(CodeInvalidRequest, "iat %s is in the future", set.IssuedAt.UTC().Format(time.RFC3339))
	case set.JTI == "":
		return refuse(CodeInvalidRequest, "jti is missing")
	case len(set.Events) == 0:
		return refuse(CodeInvalidRequest, "events is missing or empty")
	}
	for uri, payload := range set.Events {
		if t := bytes.TrimSpace(payload); len(t) == 0 || t[0] != '{' {
			return refuse(CodeInvalidRequest, "event %.200q: the payload is not a JSON object", uri)
		}
	}
	if set.SubjectID != nil {
		if err := set.SubjectID.Validate(); err != nil {
			return refuse(CodeInvalidRequest, "sub_id: %v", err)
		}
	}
	return nil
}
