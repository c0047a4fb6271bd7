// Package testidp runs a real OpenID Provider for tests: zitadel/oidc's
// op package (a maintained, certified OP library) over an in-memory
// storage of its own, serving discovery, JWKS, the authorization code flow
// and the token endpoint on a loopback httptest server. Login logs a user
// in through that flow (authorize, the login page, the callback, the code
// exchange) and returns the JWT access token the OP issued, carrying the
// user (sub), the login session (sid), a token ID (jti) and the client as
// audience. RotateKey and DropOldKeys rotate the OP's RS256 signing key;
// Close takes the OP away.
//
// It is for tests of external issuers (IssuerService): it knows nothing of
// Portcullis and imports only zitadel/oidc, go-jose, golang-jwt and the
// standard library, so that the client's, the interceptors', the agent's
// and the server's tests can all start one. Its setup fails the test (testing.TB);
// Sign and RotateKey panic only if the machine cannot make an RSA key or a
// signature, which no test can go on without.
package testidp
