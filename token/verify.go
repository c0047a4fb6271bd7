package token

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
)

// Verify verifies tok's signature with the key its kid names, checks that
// it was issued by issuer, has not expired at now and passes opts, and
// returns its claims; errors wrap ErrExpired or ErrInvalid. It makes the
// checks of golang-jwt's strict parser (the reference Parse of the tests)
// without it, at little more than the cost of ed25519.Verify. The client's Mirror verifies every token it
// has not seen before with it; golang-jwt's parse costs noticeably more
// than the bare signature check (a map-typed header, reflection over the
// claims, dozens of allocations; BENCHMARKS.md, "Checks in a service").
//
// It agrees with the reference Parse on every input (token/verify_test.go checks it
// differentially and by fuzzing): exactly three segments; base64url without
// padding, decoded by the same decoder; a JSON header whose "alg" is the
// string "EdDSA" and whose "kid" is a non-empty string the lookup knows; an
// Ed25519 signature over the first two segments; JSON claims with exp
// present and after now, nbf and iat (when present) not after now, iss
// equal to issuer (unless issuer is ""), aud containing the WithAudience
// option's audience (when given), and non-empty sid, sub and tid. As
// with Parse, an expired token is reported as ErrExpired even when another
// claim is also wrong, but only once its signature has been verified.
//
// The header and claims are read by a small scanner that accepts only the
// plain form the authority writes (flat objects, ASCII strings without
// escapes, integer times); anything else goes to encoding/json, decoded
// exactly as golang-jwt decodes it, so the fast path can only agree.
func Verify(tok, issuer string, now time.Time, keys KeyLookup, opts ...Option) (*Claims, error) {
	dot1 := strings.IndexByte(tok, '.')
	if dot1 < 0 {
		return nil, invalidf("token contains an invalid number of segments")
	}
	rest := tok[dot1+1:]
	dot2 := strings.IndexByte(rest, '.')
	if dot2 < 0 || strings.IndexByte(rest[dot2+1:], '.') >= 0 {
		return nil, invalidf("token contains an invalid number of segments")
	}
	dot2 += dot1 + 1
	headerSeg, claimSeg, sigSeg := tok[:dot1], tok[dot1+1:dot2], tok[dot2+1:]

	// Decode into stack buffers: a token is about 550 bytes, and the
	// buffers must not escape (the encoding/json fallbacks copy).
	var hbuf [256]byte
	header, err := decodeSegment(hbuf[:], headerSeg)
	if err != nil {
		return nil, invalidf("could not base64 decode header: %v", err)
	}
	var cbuf [768]byte
	payload, err := decodeSegment(cbuf[:], claimSeg)
	if err != nil {
		return nil, invalidf("could not base64 decode claims: %v", err)
	}
	claims, err := decodeClaims(payload)
	if err != nil {
		return nil, invalidf("could not JSON decode claims: %v", err)
	}
	alg, kid, crit, err := decodeHeader(header)
	if err != nil {
		return nil, invalidf("could not JSON decode header: %v", err)
	}
	if alg != Algorithm {
		return nil, invalidf("signing method %q is invalid", alg)
	}
	var sbuf [96]byte
	sig, err := decodeSegment(sbuf[:], sigSeg)
	if err != nil {
		return nil, invalidf("could not base64 decode signature: %v", err)
	}
	if crit {
		return nil, invalidf("%v", errCrit)
	}
	if kid == "" {
		return nil, invalidf("no kid header")
	}
	key, ok := keys(kid)
	if !ok {
		return nil, invalidf("unknown signing key %q", kid)
	}
	// ed25519.Verify panics on a key of the wrong size; golang-jwt refuses
	// it.
	if len(key) != ed25519.PublicKeySize || !ed25519.Verify(key, view(tok[:dot2]), sig) {
		return nil, invalidf("signature is invalid")
	}
	return claims, validate(claims, issuer, audienceOf(opts), now)
}

// validate applies the claim checks of Parse, in golang-jwt's precedence:
// expiry wins over every other claim error.
func validate(c *Claims, issuer, audience string, now time.Time) error {
	var problem string
	switch {
	case c.ExpiresAt == nil:
		problem = "exp claim is required"
	case !now.Before(c.ExpiresAt.Time):
		return ErrExpired
	case c.NotBefore != nil && now.Before(c.NotBefore.Time):
		problem = "token is not valid yet"
	case c.IssuedAt != nil && now.Before(c.IssuedAt.Time):
		problem = "token used before issued"
	case audience != "" && (len(c.Audience) == 0 || len(c.Audience) == 1 && c.Audience[0] == ""):
		problem = "aud claim is required"
	case audience != "" && !slices.Contains(c.Audience, audience):
		problem = "token has invalid audience"
	case issuer != "" && c.Issuer == "":
		problem = "iss claim is required"
	case issuer != "" && c.Issuer != issuer:
		problem = "token has invalid issuer"
	case c.SessionID == "" || c.Subject == "" || c.TenantID == "":
		problem = "missing sid, sub or tid claim"
	default:
		return nil
	}
	return invalidf("%s", problem)
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// view returns the bytes of s without copying. The callers only read them
// (base64 decoding, hashing), never keep or modify them.
func view(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// decodeSegment decodes base64url without padding, as golang-jwt does by
// default (the same decoder: it ignores \r and \n and does not check the
// unused trailing bits), into buf when it fits.
func decodeSegment(buf []byte, seg string) ([]byte, error) {
	enc := base64.RawURLEncoding
	if n := enc.DecodedLen(len(seg)); n > len(buf) {
		buf = make([]byte, n)
	}
	n, err := enc.Decode(buf, view(seg))
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// decodeHeader returns the "alg" and "kid" of a JOSE header, as golang-jwt
// reads them from its map: a missing or non-string alg or kid is "". crit
// reports a "crit" parameter of any value, which Verify refuses as Parse
// does.
func decodeHeader(b []byte) (alg, kid string, crit bool, err error) {
	s := scanner{b: b}
	if s.open() {
		var algB, kidB []byte
		var algOK, kidOK bool
		for {
			key, val, str, more, ok := s.member()
			if !ok {
				break
			}
			if !more {
				if s.end() {
					// Convert only the values that are used: two small
					// allocations instead of golang-jwt's map.
					if algOK {
						alg = string(algB)
					}
					if kidOK {
						kid = string(kidB)
					}
					return alg, kid, crit, nil
				}
				break
			}
			switch string(key) {
			case "crit":
				crit = true
			case "alg":
				algB, algOK = val, str
			case "kid":
				kidB, kidOK = val, str
			}
		}
	}
	// Not the plain form: decode it the way golang-jwt does.
	var h map[string]any
	if err := json.Unmarshal(bytes.Clone(b), &h); err != nil {
		return "", "", false, err
	}
	alg, _ = h["alg"].(string)
	kid, _ = h["kid"].(string)
	_, crit = h["crit"]
	return alg, kid, crit, nil
}

// decodeClaims decodes the claims. The plain form is read by hand; any
// other goes to encoding/json into the same struct golang-jwt decodes into.
func decodeClaims(b []byte) (*Claims, error) {
	if c, ok := plainClaims(b); ok {
		return c, nil
	}
	c := &Claims{}
	if err := json.Unmarshal(bytes.Clone(b), c); err != nil {
		return nil, err
	}
	return c, nil
}

// plainClaims reads claims that use only sid, tid, did, iss, sub (plain
// strings), aud (a plain string, or an array of one, as golang-jwt writes
// it) and exp, iat, nbf (integers): what the authority writes. A duplicate
// key overwrites, as in encoding/json.
func plainClaims(b []byte) (*Claims, bool) {
	s := scanner{b: b}
	if !s.open() {
		return nil, false
	}
	c := &Claims{}
	for {
		key, val, str, more, ok := s.member()
		if !ok {
			return nil, false
		}
		if !more {
			return c, s.end()
		}
		if s.arr && string(key) != "aud" {
			return nil, false // an array where only aud may have one
		}
		var dst *string
		var date **jwt.NumericDate
		switch string(key) {
		case "aud":
			if !str && !s.arr {
				return nil, false
			}
			c.Audience = jwt.ClaimStrings{string(val)}
			continue
		case "sid":
			dst = &c.SessionID
		case "tid":
			dst = &c.TenantID
		case "did":
			dst = &c.DeviceID
		case "iss":
			dst = &c.Issuer
		case "sub":
			dst = &c.Subject
		case "exp":
			date = &c.ExpiresAt
		case "iat":
			date = &c.IssuedAt
		case "nbf":
			date = &c.NotBefore
		default:
			// Unknown keys (and keys that differ only in case, which
			// encoding/json matches to fields) take the slow path.
			return nil, false
		}
		switch {
		case dst != nil && str:
			*dst = string(val)
		case date != nil && !str:
			n, ok := parseInt(val)
			if !ok {
				return nil, false
			}
			// As jwt.NumericDate.UnmarshalJSON: seconds, at TimePrecision.
			*date = jwt.NewNumericDate(time.Unix(n, 0))
		default:
			return nil, false
		}
	}
}

// parseInt parses a JSON integer of at most 15 digits (exact as a float64,
// which is how golang-jwt reads numeric dates).
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 15 || (b[0] == '0' && len(b) > 1) {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// scanner reads a flat JSON object whose keys are plain strings and whose
// values are plain strings or integers. "Plain" means printable ASCII
// without escapes: exactly what encoding/json decodes to the same bytes.
// Anything else makes it report !ok, and the caller falls back to
// encoding/json, which decides.
type scanner struct {
	b       []byte
	i       int
	started bool // a member has been read: the next needs a comma
	arr     bool // the last member's value was an array of one plain string
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) open() bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '{' {
		s.i++
		return true
	}
	return false
}

// end reports whether only whitespace follows.
func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// member reads the next member. more is false (with ok) at the closing
// brace. Members after the first must follow a comma.
func (s *scanner) member() (key, val []byte, str, more, ok bool) {
	s.ws()
	if s.i >= len(s.b) {
		return nil, nil, false, false, false
	}
	if s.b[s.i] == '}' {
		s.i++
		return nil, nil, false, false, true
	}
	if s.started {
		if s.b[s.i] != ',' {
			return nil, nil, false, false, false
		}
		s.i++
		s.ws()
	}
	s.started = true
	if key, ok = s.str(); !ok {
		return nil, nil, false, false, false
	}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != ':' {
		return nil, nil, false, false, false
	}
	s.i++
	s.ws()
	s.arr = false
	if s.i < len(s.b) && s.b[s.i] == '"' {
		val, ok = s.str()
		return key, val, true, ok, ok
	}
	if s.i < len(s.b) && s.b[s.i] == '[' {
		// An array of exactly one plain string (golang-jwt writes "aud"
		// so): val is the string, str false, s.arr true.
		s.i++
		s.ws()
		if val, ok = s.str(); !ok {
			return nil, nil, false, false, false
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ']' {
			return nil, nil, false, false, false
		}
		s.i++
		s.arr = true
		return key, val, false, true, true
	}
	start := s.i
	for s.i < len(s.b) && (s.b[s.i] == '-' || (s.b[s.i] >= '0' && s.b[s.i] <= '9')) {
		s.i++
	}
	val = s.b[start:s.i]
	if _, isInt := parseInt(val); !isInt {
		return nil, nil, false, false, false
	}
	// What follows (whitespace, then ',' or '}') is checked by the next
	// call: "1x" or "1.5" fail there or here.
	return key, val, false, true, true
}

// str reads a plain string and returns its contents.
func (s *scanner) str() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return s.b[start:j], true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return nil, false
		}
	}
	return nil, false
}
