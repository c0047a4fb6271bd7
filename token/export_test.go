package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Parse is the reference verifier that Verify is held equal to (by the
// differential and fuzz tests) and measured against (BenchmarkParse): the
// same contract, built on golang-jwt's parser. It was the authority's
// verifier; Verify now serves both, so only the tests need it.
func Parse(tok, issuer string, now time.Time, keys KeyLookup, opts ...Option) (*Claims, error) {
	claims := &Claims{}
	checks := []jwt.ParserOption{
		jwt.WithValidMethods([]string{Algorithm}),
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	}
	if aud := audienceOf(opts); aud != "" {
		checks = append(checks, jwt.WithAudience(aud))
	}
	_, err := jwt.ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			// RFC 7515 4.1.11: crit names extensions the verifier must
			// understand, and this one understands none.
			return nil, errCrit
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid header")
		}
		key, ok := keys(kid)
		if !ok {
			return nil, fmt.Errorf("unknown signing key %q", kid)
		}
		return key, nil
	}, checks...)
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, ErrExpired
	default:
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if claims.SessionID == "" || claims.Subject == "" || claims.TenantID == "" {
		return nil, fmt.Errorf("%w: missing sid, sub or tid claim", ErrInvalid)
	}
	return claims, nil
}

// FastPayload and SlowPayload expose the two readers of external claims
// (extclaims.go) as comparable strings, for FuzzExternalClaims.
func FastPayload(b []byte) (string, bool) {
	p, ok := fastPayload(b)
	return showPayload(p), ok
}

func SlowPayload(b []byte) (string, error) {
	var p externalPayload
	err := json.Unmarshal(b, &p)
	return showPayload(p), err
}

func showPayload(p externalPayload) string {
	f := func(x *float64) string {
		if x == nil {
			return "-"
		}
		return strconv.FormatFloat(*x, 'g', -1, 64)
	}
	return fmt.Sprintf("%q %q %q %q %q(%d) %s %s %s", p.Issuer, p.Subject, p.SessionID, p.ID, []string(p.Audience), len(p.Audience),
		f(p.ExpiresAt), f(p.NotBefore), f(p.IssuedAt))
}
