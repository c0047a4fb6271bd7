// Package clientip decides which address a request is checked against:
// the peer's, or, when the peer is a trusted proxy, the address a
// forwarding header (X-Forwarded-For, X-Real-IP) names. The gRPC
// interceptors and the agent (every front door: forward-auth, Envoy
// ext_authz) use it, so that a request is attributed to the same client
// whichever way it reaches Portcullis.
//
// The rule: the peer is the client unless it is inside a trusted prefix;
// then the header is read right to left (each proxy appends the address
// it received the request from), and the first address that is not
// itself a trusted proxy is the client. An untrusted peer cannot choose
// its address by sending the header, and a client behind trusted proxies
// cannot either, since its own entries are left of the one the first
// trusted proxy wrote.
//
// Addresses are named as the authority names them: the IPv6 forms of an
// IPv4 address (ident.EmbeddedIPv4) as IPv4, zones dropped, so that IPv4
// bans match and the authority, which refuses those forms, accepts them.
//
// It is a leaf: it imports ident/ and the standard library only, so that
// interceptors/ and agent/ (which may import nothing internal) share it.
package clientip
