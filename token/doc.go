// Package token defines Portcullis access tokens: the JWT claims the
// authority signs, Sign, and Verify, which checks them. The authority
// (internal/authority) signs and verifies with it and the client's Mirror
// verifies with it, so both always agree on the format.
//
// Access tokens are compact JWTs signed with EdDSA (Ed25519), with a "kid"
// header and the claims iss, aud (an array of one, the authority's
// --audience), sub (user), sid (session), tid (tenant), did (device, when
// known), iat and exp. Any JWT library that supports EdDSA verifies them
// with the public keys from KeyService or the JWKS document, checking the
// issuer and the audience. Verify checks the audience when given
// WithAudience: the authority's VerifySession and the client's Mirror do.
//
// Sign is built on github.com/golang-jwt/jwt/v5: the most widely used Go
// JWT library, maintained, with EdDSA support. Verify does not parse with
// it, for verifiers that see many tokens (the client's Mirror): it makes
// golang-jwt's strict checks (allowed algorithm, required expiry, issuer,
// audience, injected clock) at about the cost of ed25519.Verify alone
// (BENCHMARKS.md, "Checks in a service"), and is held equal to a verifier
// on golang-jwt's parser (Parse, in the tests only) by a differential test
// and a fuzz test.
//
// External issuers' tokens (external.go) are verified by VerifyExternal:
// the issuer is chosen by "iss", the key by "kid" among that issuer's
// keys only, the algorithm must be one bound to the key (ParseExternalKey
// binds RS256/PS256 to RSA keys of at least 2048 bits, ES256 to P-256,
// EdDSA to Ed25519: never none or HMAC), and the signature is checked by
// golang-jwt's signing methods; then exp, nbf and iat with the issuer's
// leeway, the issuer's max lifetime, aud and the user claim. Their claims
// are decoded with encoding/json: they vary by provider.
//
// It imports only the standard library and golang-jwt, so that the
// authority and every service verify with the same code.
package token
