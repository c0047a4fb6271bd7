package server

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
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

// JWK is one key of a JWKS document (RFC 7517), for an Ed25519 key as RFC
// 8037 defines it.
type JWK struct {
	KeyType   string `json:"kty"` // "OKP"
	Curve     string `json:"crv"` // "Ed25519"
	X         string `json:"x"`   // the public key, base64url without padding
	KeyID     string `json:"kid"`
	Algorithm string `json:"alg"` // "EdDSA"
	Use       string `json:"use"` // "sig"
}

// JWKS is a JSON Web Key Set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// jwksOf converts the verification keys (current and retired-but-valid).
func jwksOf(keys []storage.SigningKey) (JWKS, error) {
	out := JWKS{Keys: make([]JWK, 0, len(keys))}
	for _, k := range keys {
		if k.Algorithm != "EdDSA" {
			return JWKS{}, fmt.Errorf("key %s: algorithm %q has no JWK mapping here", k.ID, k.Algorithm)
		}
		out.Keys = append(out.Keys, JWK{KeyType: "OKP", Curve: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k.PublicKey),
			KeyID: k.ID, Algorithm: "EdDSA", Use: "sig"})
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
