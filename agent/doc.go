// Package agent is `portcullis agent`: Portcullis's local enforcement for
// services that do not link the Go interceptors (any language, any
// gateway). It decides each request from a local client.Mirror, with no
// network call, behind three front doors that share one decision:
//
//   - HTTP forward-auth at /authz, for nginx auth_request, Caddy
//     forward_auth and Traefik ForwardAuth: 200 with the identity headers
//     (X-Portcullis-User, -Session, -Tenant, and -Issuer for an external
//     OIDC issuer's token) for the upstream, or the
//     refusal: 401 for token problems, 403 for bans, 503 when the mirror
//     is stale (fail closed, unless the mirror is fail-open), with the
//     reason in X-Portcullis-Reason (and X-Portcullis-Ban-Id,
//     -Expire-Time) and a JSON body {code, reason, message, ban_id,
//     expire_time, capability};
//   - Envoy external authorization v3 over gRPC
//     (envoy.service.auth.v3.Authorization/Check, RegisterExtAuthz), for
//     Envoy and Istio's CUSTOM provider: the same answers as an OK or
//     denied CheckResponse, whose status is the interceptors' (code and
//     ErrorInfo);
//   - RFC 7662 introspection at /introspect, for callers that hold a
//     configured secret: active only for a token the mirror accepts.
//
// And /healthz, /readyz (the mirror synced and not stale past its bound)
// and /metrics (decisions by door, result and reason; decision latency;
// the mirror's lag and staleness, from client/mirrormetrics).
//
// The decision (Decide) is the interceptors': the bearer token from
// Authorization; the client address from the peer, or from
// X-Forwarded-For only through trusted proxies (package clientip, which
// the interceptors use too: right-most untrusted); a device from a
// configured header besides the token's did claim; the capability from a
// route table (method + path prefix, the longest prefix wins); public
// routes that need no token. The check itself is client.Mirror.Check, and
// refusals are rendered from client.Status, so the agent, the
// interceptors and the authority's VerifySession give the same answer.
//
// Choices made here:
//   - Paths are matched after percent-decoding and resolving dot segments
//     and repeated slashes (nginx passes the raw $request_uri), segment by
//     segment (/api covers /api/x, not /apis): "/public/../admin" is
//     /admin, never public. GET routes cover HEAD.
//   - Without trusted_proxies in the configuration, loopback is trusted:
//     the agent listens on loopback, where its peer is the gateway on the
//     same host, which must pass the client in X-Forwarded-For.
//   - The original request is named by X-Original-Method/X-Original-URI
//     (nginx) or X-Forwarded-Method/X-Forwarded-Uri (Caddy, Traefik); a
//     header given twice, or the two conventions disagreeing, is refused
//     (400), since the one the gateway did not set came from the client.
//   - Identity headers are set on every admission, empty when they have
//     no value (a public route; the issuer of the authority's own tokens),
//     so that a gateway copying them overwrites the client's own; ext_authz
//     overwrites them, or removes the empty ones.
//   - The answer to an admission is rendered once per verified session
//     (admitted.go: the header values, the ext_authz OK response), keyed
//     by the *client.Session the mirror returns for a cached token, so
//     that a cached token's decision allocates nothing; a refusal is
//     rendered each time (refusals are rare and carry the ban).
//   - ext_authz remembers the source addresses Envoy sends, parsed, in a
//     bounded direct-mapped cache keyed by the exact string (srcaddr.go):
//     a hash and a comparison cost a fraction of parsing.
//   - ext_authz never fails the RPC for a refusal: it answers a denied
//     CheckResponse, so Envoy's failure_mode_allow cannot admit it.
//   - A gateway decides per request: an open WebSocket or gRPC stream
//     through it is not cut by a ban (the Go interceptors do that).
//
// It imports client/ (and client/mirrormetrics), clientip/, rpcerr/,
// ident/, go-control-plane's ext_authz types, gRPC, Prometheus and YAML;
// nothing from internal/ or server/: like any service, it depends on the
// API only.
package agent
