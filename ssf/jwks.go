package ssf

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
)

// JWK is one usable signature key of a JWKS.
type JWK struct {
	KeyID     string
	Algorithm string // the JWK's alg; empty when it has none
	Key       crypto.PublicKey
}

// Algorithms returns the algorithms the key verifies: its alg when the JWK
// names one, otherwise the one algorithm of its key type (RS256 for RSA,
// ES256 for P-256, EdDSA for Ed25519).
func (k JWK) Algorithms() []string {
	if k.Algorithm != "" {
		return []string{k.Algorithm}
	}
	switch k.Key.(type) {
	case *rsa.PublicKey:
		return []string{AlgRS256}
	case *ecdsa.PublicKey:
		return []string{AlgES256}
	case ed25519.PublicKey:
		return []string{AlgEdDSA}
	}
	return nil
}

// maxJWKs bounds the keys ParseJWKS keeps.
const maxJWKs = 64

type jwkJSON struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	D   string `json:"d"`
}

// ParseJWKS parses a JWKS document (RFC 7517) and keeps its usable public
// signature keys: a kid, use absent or "sig", and an RSA key of at least
// 2048 bits (alg RS256), an EC P-256 key (ES256) or an Ed25519 key (EdDSA),
// the alg when present matching the key type. Other keys (encryption keys,
// private keys, other curves) are skipped, as identity providers publish
// those too; a kid seen twice keeps its first key. It fails when the
// document is not a JWKS or no key is usable.
//
// It is written over the standard library rather than go-jose so that this
// public package depends on the standard library and golang-jwt alone; the
// three key types take a few lines each.
func ParseJWKS(body []byte) ([]JWK, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("ssf: jwks: %w", err)
	}
	var out []JWK
	for _, raw := range doc.Keys {
		var j jwkJSON
		if json.Unmarshal(raw, &j) != nil || j.Kid == "" || j.D != "" || (j.Use != "" && j.Use != "sig") {
			continue
		}
		if slices.ContainsFunc(out, func(k JWK) bool { return k.KeyID == j.Kid }) {
			continue
		}
		pub, alg, err := j.publicKey()
		if err != nil || (j.Alg != "" && j.Alg != alg) {
			continue
		}
		out = append(out, JWK{KeyID: j.Kid, Algorithm: j.Alg, Key: pub})
		if len(out) == maxJWKs {
			break
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("ssf: jwks: no usable signature key among %d (a kid and an RSA >= 2048 bits, P-256 or Ed25519 public key)", len(doc.Keys))
	}
	return out, nil
}

// publicKey returns the key and the algorithm of its type.
func (j jwkJSON) publicKey() (crypto.PublicKey, string, error) {
	switch {
	case j.Kty == "RSA":
		n, err1 := b64d.DecodeString(j.N)
		e, err2 := b64d.DecodeString(j.E)
		if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 || (len(n) > 0 && n[0] == 0) {
			return nil, "", errors.New("bad RSA members")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < 2048 || pub.N.BitLen() > 8192 || pub.E < 3 || pub.E%2 == 0 {
			return nil, "", errors.New("unacceptable RSA key")
		}
		return pub, AlgRS256, nil
	case j.Kty == "EC" && j.Crv == "P-256":
		x, err1 := b64d.DecodeString(j.X)
		y, err2 := b64d.DecodeString(j.Y)
		if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
			return nil, "", errors.New("bad EC members")
		}
		// ecdh checks that the point is on the curve.
		if _, err := ecdh.P256().NewPublicKey(append(append([]byte{4}, x...), y...)); err != nil {
			return nil, "", err
		}
		return &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}, AlgES256, nil
	case j.Kty == "OKP" && j.Crv == "Ed25519":
		x, err := b64d.DecodeString(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, "", errors.New("bad Ed25519 members")
		}
		return ed25519.PublicKey(x), AlgEdDSA, nil
	}
	return nil, "", errors.New("unsupported key type")
}

// KeyFunc returns a VerifyOptions.Key over keys.
func KeyFunc(keys []JWK) func(kid string) (crypto.PublicKey, []string, bool) {
	return func(kid string) (crypto.PublicKey, []string, bool) {
		for _, k := range keys {
			if k.KeyID == kid {
				return k.Key, k.Algorithms(), true
			}
		}
		return nil, nil, false
	}
}
