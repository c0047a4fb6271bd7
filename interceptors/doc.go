// Package interceptors enforces Portcullis sessions and bans in any gRPC
// service, locally, with no network call per request.
//
// The server interceptors ([ServerOptions]) read the caller's access token from
// "authorization: Bearer <token>", work out the caller's IP address and
// device, and ask a [Checker] (in production a *client.Mirror, which keeps a
// live copy of the authority's bans and revocations) whether the call may
// proceed. A refused call ends with the status the client package builds
// (client.Status): PermissionDenied with ErrorInfo reason USER_BANNED,
// IP_BANNED, DEVICE_BANNED or CAPABILITY_RESTRICTED and metadata ban_id and
// expire_time; Unauthenticated with TOKEN_INVALID, TOKEN_EXPIRED or
// SESSION_REVOKED for credential problems (a call without a bearer token is
// TOKEN_INVALID); Unavailable with MIRROR_STALE when the mirror has lost
// the authority. An admitted call's handler finds the verified session with
// [SessionFromContext].
//
// Streams stay checked while they are open: the stream interceptor
// registers every admitted stream with Checker.Track, and when the mirror
// learns that the stream's user, device or IP address was banned (fully,
// or for the capability its method maps to in [WithCapabilities]), or its
// session revoked, the handler's Context() is cancelled and the RPC ends
// with that ban's status, whatever the handler returns. A handler that
// watches its stream's Context() (as every long-lived gRPC handler should)
// ends within milliseconds even when the client sends nothing; its next
// SendMsg or RecvMsg fails with the ban's status in any case. No goroutine
// per stream: the mirror calls the stream's cancel function when an event
// concerns it.
//
// Choices made here:
//   - The server interceptors are go-grpc-middleware v2 auth interceptors
//     behind a selector, so methods named by [WithPublicMethods] skip the
//     check. As with any auth interceptor of that library, a service that
//     implements auth.ServiceAuthFuncOverride replaces the check for all
//     of its methods; its calls then carry no session.
//   - The client IP is the peer address unless the peer is inside a prefix
//     given to [WithTrustedProxies]; only then is the header named by
//     [WithClientIPHeader] (default x-forwarded-for) read, right to left,
//     and the first address that is not itself a trusted proxy is the
//     client. An untrusted peer cannot choose its address by sending the
//     header. The IPv6 forms of an IPv4 address (IPv4-mapped, NAT64
//     64:ff9b::/96, IPv4-compatible, 6to4 2002::/16; see
//     ident.EmbeddedIPv4) are checked as the IPv4 address and zones
//     dropped, so IPv4 bans match and the authority, which refuses those
//     forms, accepts the address.
//   - [ServerOptions] gives both interceptors from one option set, so the
//     unary and the stream check cannot disagree, and validates the set
//     there: configuration mistakes (a capability name that is no
//     lower-case ASCII token, as the authority accepts in bans; an invalid
//     proxy prefix; strict methods with a checker that cannot catch up; a
//     public method also given a capability or strictness; with
//     [WithServices], a method name no service has) are an error at
//     start-up rather than refused or unchecked calls. Method names are
//     checked against descriptors given with WithServices rather than a
//     *grpc.Server, because the options exist before the server does.
//   - The device checked is the token's did claim and, when
//     [WithDeviceIDMetadata] is configured and the call sends that key, the
//     device it names as well (a device ban on either refuses the call).
//   - The client interceptors attach a token from a token source, unless
//     the call's context already carries one from [WithToken], which is how
//     a service forwards its caller's token ([TokenFromIncoming]) to
//     another service.
//
// # Consistency per method
//
// By default (local) a method is checked against the mirror as it is:
// no network call, and a ban applies once the mirror has applied it. A
// method named by [WithStrictMethods] (catch-up) first asks the authority
// for its current revision (EventService.GetRevision), waits until the
// mirror has applied it (a Checker with a CatchUp method, as *client.Mirror has), then
// checks locally; if the mirror does not catch up within
// [WithStrictTimeout] (default 1s) the call fails closed with
// MIRROR_STALE. A method named by [WithAuthorityMethods] is checked by the
// authority's VerifySession. Catch-up adds one round trip to the authority
// per call, VerifySession a round trip and the authority's full
// check (BENCHMARKS.md, "Consistency per method", BenchmarkConsistency).
// Mark strict the methods that must not run for a
// user banned a moment ago (payments, payouts, irreversible actions); the
// price is a round trip per call and a dependency on the authority being
// reachable.
//
// This package may import client/, ident/, gen/, grpc and
// go-grpc-middleware v2; it imports nothing from server/ or internal/, so
// that a service links the API and the SDK only. Nor do its tests: they
// start a real authority with authoritytest.
package interceptors
