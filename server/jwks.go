package server

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// JWKSMaxAge is the Cache-Control max-age of /.well-known/jwks.json. It is
// far shorter than the rotation overlap (a retired key stays published for
// the access-token lifetime, 15 minutes by default, after it stopped
// signing) so that a verifier caching the document sees a new key within a
// minute of a rotation; verifiers should also refetch on an unknown kid.
const JWKSMaxAge = time.Minute

// JWK is one key of a JWKS document (RFC 7517): an Ed25519 token key as
// RFC 8037 defines it, or the RS256 SET key as RFC 7518 §6.3 does.
type JWK struct {
	KeyType   string `json:"kty"`           // "OKP" or "RSA"
	Curve     string `json:"crv,omitempty"` // OKP: "Ed25519"
	X         string `json:"x,omitempty"`   // OKP: the public key, base64url without padding
	N         string `json:"n,omitempty"`   // RSA: the modulus, base64url without padding
	E         string `json:"e,omitempty"`   // RSA: the exponent, base64url without padding
	KeyID     string `json:"kid"`
	Algorithm string `json:"alg"` // "EdDSA" or "RS256"
	Use       string `json:"use"` // "sig"
}

// JWKS is a JSON Web Key Set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// jwksOf converts the verification keys (current and retired-but-valid
// token keys, and the RS256 SET key).
func jwksOf(keys []storage.SigningKey) (JWKS, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	out := JWKS{Keys: make([]JWK, 0, len(keys))}
	for _, k := range keys {
		switch k.Algorithm {
		case "EdDSA":
			out.Keys = append(out.Keys, JWK{KeyType: "OKP", Curve: "Ed25519", X: b64(k.PublicKey),
				KeyID: k.ID, Algorithm: "EdDSA", Use: "sig"})
		case "RS256":
			parsed, err := x509.ParsePKIXPublicKey(k.PublicKey)
			pub, ok := parsed.(*rsa.PublicKey)
			if err != nil || !ok {
				return JWKS{}, fmt.Errorf("key %s: not a PKIX RSA public key (%v)", k.ID, err)
			}
			out.Keys = append(out.Keys, JWK{KeyType: "RSA", N: b64(pub.N.Bytes()), E: b64(big.NewInt(int64(pub.E)).Bytes()),
				KeyID: k.ID, Algorithm: "RS256", Use: "sig"})
		default:
			return JWKS{}, fmt.Errorf("key %s: algorithm %q has no JWK mapping here", k.ID, k.Algorithm)
		}
	}
	return out, nil
}

// serveJWKS serves the verification keys as a JWKS document, so that
// services in any language verify access tokens with their usual JWT
// library.
func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	keys, err := s.auth.ListKeys(r.Context())
	if err == nil {
		var doc JWKS
		doc, err = jwksOf(keys)
		if err == nil {
			body, _ := json.Marshal(doc)
			w.Header().Set("Content-Type", "application/jwk-set+json")
			w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(JWKSMaxAge.Seconds())))
			_, _ = w.Write(body)
			return
		}
	}
	s.log.ErrorContext(r.Context(), "serving the JWKS", "error", err)
	http.Error(w, "the keys are unavailable", http.StatusServiceUnavailable)
}
