// Package txfake is a Shared Signals transmitter for tests of the
// receiver: an httptest server with /.well-known/ssf-configuration, a
// JWKS, a stream management endpoint (create and delete only) and a poll
// endpoint, signing SETs with ssf.Sign. It is narrow on purpose: it does
// what a transmitter does for one receiver's stream, and records what the
// receiver sent (the stream it asked for, bearer tokens, acks, setErrs) so
// that tests check it. The real transmitter is internal/transmitter.
//
// It imports the standard library and package ssf only; only tests import
// it. It panics only if ssf.Sign fails with its own Ed25519 key, which
// would be a bug in the test, not an input.
package txfake
