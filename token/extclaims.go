package token

import (
	"bytes"
	"encoding/json"
)

// Decoding an external token's claims. An IdP's access token carries a
// kilobyte of claims (roles, scopes, profile) of which VerifyExternal
// needs eight; encoding/json validates and reflects over all of them,
// which cost a fifth of a first-seen RS256 check. fastPayload reads the
// eight from the plain form IdPs write and skips the rest, validating its
// syntax; anything it is not sure to read exactly as encoding/json would
// (escapes or non-ASCII in a key or a wanted string, a key that differs
// only in case from a wanted one, a fractional or huge time, null, deep
// nesting) sends the payload to encoding/json, so the two can only agree
// (FuzzExternalClaims holds it differentially).

// decodePayload decodes the claims VerifyExternal reads.
func decodePayload(b []byte) (externalPayload, error) {
	if p, ok := fastPayload(b); ok {
		return p, nil
	}
	var p externalPayload
	err := json.Unmarshal(b, &p)
	return p, err
}

const maxClaimDepth = 32

var wantedClaims = [...]string{"iss", "sub", "sid", "jti", "aud", "exp", "nbf", "iat"}

// claimIndex is key's index in wantedClaims, or -1.
func claimIndex(key []byte) int {
	switch string(key) { // compared without a conversion
	case "iss":
		return 0
	case "sub":
		return 1
	case "sid":
		return 2
	case "jti":
		return 3
	case "aud":
		return 4
	case "exp":
		return 5
	case "nbf":
		return 6
	case "iat":
		return 7
	}
	return -1
}

func fastPayload(b []byte) (externalPayload, bool) {
	var p externalPayload
	s := jscan{b: b}
	s.ws()
	if !s.eat('{') {
		return p, false
	}
	s.ws()
	if s.eat('}') {
		return p, s.rest()
	}
	for {
		s.ws()
		key, plain, ok := s.str()
		if !ok || !plain {
			return p, false
		}
		s.ws()
		if !s.eat(':') {
			return p, false
		}
		s.ws()
		switch w := claimIndex(key); {
		case w >= 0 && w <= 3: // iss, sub, sid, jti
			v, plain, ok := s.str()
			if !ok || !plain {
				return p, false
			}
			*[...]*string{&p.Issuer, &p.Subject, &p.SessionID, &p.ID}[w] = string(v)
		case w == 4: // aud
			aud, ok := s.audience()
			if !ok {
				return p, false
			}
			p.Audience = aud
		case w >= 5: // exp, nbf, iat
			n, ok := s.integer()
			if !ok {
				return p, false
			}
			f := float64(n)
			*[...]**float64{&p.ExpiresAt, &p.NotBefore, &p.IssuedAt}[w-5] = &f
		default:
			for _, c := range wantedClaims {
				if bytes.EqualFold(key, []byte(c)) {
					return p, false // encoding/json would match it to the field
				}
			}
			if !s.skip(0) {
				return p, false
			}
		}
		s.ws()
		if s.eat('}') {
			return p, s.rest()
		}
		if !s.eat(',') {
			return p, false
		}
	}
}

// jscan is a cursor over JSON text.
type jscan struct {
	b []byte
	i int
}

func (s *jscan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jscan) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// rest reports whether only whitespace is left.
func (s *jscan) rest() bool {
	s.ws()
	return s.i == len(s.b)
}

// str reads a string. plain means printable ASCII without escapes, whose
// bytes are its value; otherwise it was only checked and skipped.
func (s *jscan) str() (v []byte, plain, ok bool) {
	if !s.eat('"') {
		return nil, false, false
	}
	start, plain := s.i, true
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v = s.b[start:s.i]
			s.i++
			return v, plain, true
		case c < 0x20:
			return nil, false, false
		case c == '\\':
			plain = false
			if s.i+1 >= len(s.b) {
				return nil, false, false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return nil, false, false
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if !isHex(h) {
						return nil, false, false
					}
				}
				s.i += 6
			default:
				return nil, false, false
			}
			continue
		case c >= 0x7f:
			plain = false
		}
		s.i++
	}
	return nil, false, false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// audience reads a plain string or an array of plain strings.
func (s *jscan) audience() (audience, bool) {
	if s.i < len(s.b) && s.b[s.i] == '"' {
		v, plain, ok := s.str()
		if !ok || !plain {
			return nil, false
		}
		return audience{string(v)}, true
	}
	if !s.eat('[') {
		return nil, false
	}
	aud := audience{}
	s.ws()
	if s.eat(']') {
		return aud, true
	}
	for {
		s.ws()
		v, plain, ok := s.str()
		if !ok || !plain {
			return nil, false
		}
		aud = append(aud, string(v))
		s.ws()
		if s.eat(']') {
			return aud, true
		}
		if !s.eat(',') {
			return nil, false
		}
	}
}

// integer reads a JSON integer of at most 15 digits (exact as the float64
// encoding/json would make of it), not followed by a fraction or exponent.
func (s *jscan) integer() (int64, bool) {
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return parseInt(s.b[start:s.i])
}

// skip checks and passes over one value of any kind.
func (s *jscan) skip(depth int) bool {
	if s.i >= len(s.b) || depth > maxClaimDepth {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, _, ok := s.str()
		return ok
	case c == '{':
		s.i++
		s.ws()
		if s.eat('}') {
			return true
		}
		for {
			s.ws()
			if _, _, ok := s.str(); !ok {
				return false
			}
			s.ws()
			if !s.eat(':') {
				return false
			}
			s.ws()
			if !s.skip(depth + 1) {
				return false
			}
			s.ws()
			if s.eat('}') {
				return true
			}
			if !s.eat(',') {
				return false
			}
		}
	case c == '[':
		s.i++
		s.ws()
		if s.eat(']') {
			return true
		}
		for {
			s.ws()
			if !s.skip(depth + 1) {
				return false
			}
			s.ws()
			if s.eat(']') {
				return true
			}
			if !s.eat(',') {
				return false
			}
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	}
	return false
}

func (s *jscan) literal(lit string) bool {
	if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		s.i += len(lit)
		return true
	}
	return false
}

// number passes over a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jscan) number() bool {
	s.eat('-')
	switch {
	case s.eat('0'):
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	if s.eat('.') && !s.digits() {
		return false
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits passes over one or more digits.
func (s *jscan) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}
