package ssf

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// Signature algorithms.
const (
	AlgEdDSA = "EdDSA"
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
)

type header struct {
	Alg string `json:"alg"`
	Typ string `json:"typ,omitempty"`
	Kid string `json:"kid,omitempty"`
}

// Sign returns set as a compact JWS with header typ "secevent+jwt" and kid,
// signed by key with alg: "EdDSA" (an Ed25519 signer) or "RS256" (an RSA
// signer of at least 2048 bits). The key is any crypto.Signer, so it may
// live in an HSM.
func Sign(set SET, kid, alg string, key crypto.Signer) (string, error) {
	if set.JTI == "" || len(set.Events) == 0 || set.Issuer == "" || set.IssuedAt.IsZero() {
		return "", errors.New("ssf: a SET needs iss, iat, jti and at least one event")
	}
	var opts crypto.SignerOpts
	switch pub := key.Public().(type) {
	case ed25519.PublicKey:
		if alg != AlgEdDSA {
			return "", fmt.Errorf("ssf: an Ed25519 key signs EdDSA, not %.40q", alg)
		}
		opts = crypto.Hash(0)
	case *rsa.PublicKey:
		if alg != AlgRS256 {
			return "", fmt.Errorf("ssf: an RSA key signs RS256 here, not %.40q", alg)
		}
		if pub.N.BitLen() < 2048 {
			return "", errors.New("ssf: RSA keys of fewer than 2048 bits are refused")
		}
		opts = crypto.SHA256
	default:
		return "", fmt.Errorf("ssf: unsupported signing key %T", pub)
	}
	h, err := json.Marshal(header{Alg: alg, Typ: TokenType, Kid: kid})
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(set)
	if err != nil {
		return "", fmt.Errorf("ssf: %w", err)
	}
	input := b64(h) + "." + b64(claims)
	msg := []byte(input)
	if opts.HashFunc() == crypto.SHA256 {
		sum := sha256.Sum256(msg)
		msg = sum[:]
	}
	sig, err := key.Sign(rand.Reader, msg, opts)
	if err != nil {
		return "", fmt.Errorf("ssf: sign: %w", err)
	}
	return input + "." + b64(sig), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
