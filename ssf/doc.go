// Package ssf is the wire of the OpenID Shared Signals Framework 1.0: Security
// Event Tokens (RFC 8417) and their signing and verification, the subject
// identifiers of RFC 9493 and SSF, the CAEP 1.0 and RISC 1.0 event payloads
// Portcullis sends and receives, the JSON of the SSF stream management API,
// of push (RFC 8935) and poll (RFC 8936) delivery, and the parsing of a
// transmitter's JWKS.
//
// It owns nothing of Portcullis's storage, domain or gRPC: it imports only
// the standard library and golang-jwt (for the JWS signature algorithms), so
// that a transmitter, a receiver or a test of either can use it alone.
//
// Verify is strict where RFC 8417 and SSF 1.0 are: the token must be a
// signed JWS (never "none") whose kid names a key the caller knows, with an
// algorithm that key is bound to; its typ header, when present, must be
// "secevent+jwt"; iss and aud must be the expected ones; iat must lie in the
// accepted window; jti and events are required. Every refusal is a
// *VerifyError carrying the RFC 8935 error code a push endpoint answers.
package ssf
