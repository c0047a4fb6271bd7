// Package client is the Go SDK of Portcullis: a typed client of the
// authority's API, the error sentinels every call and check returns, and
// Mirror, which enforces bans locally by following the event stream.
//
// It owns:
//
//   - The connection to the authority (Dial, Client): the generated
//     service clients behind one connection, which may name several
//     replicas of one authority ("host:port,host:port,..."). The
//     connection uses one replica at a time, so that a Watch stream and
//     its progress reports reach the same one, and moves to another,
//     tried in a fresh random order, when it fails.
//   - The error contract on the Go side (docs/design.md section 5): its
//     sentinels and BanError are those of the error catalogue (package
//     rpcerr, which holds the table reason -> code -> sentinel); FromStatus
//     and Status apply it both ways to every call's status, so that
//     errors.Is(err, ErrUserBanned) works on any call. It re-exports only
//     the sentinels a protected service meets; every other reason is
//     rpcerr.ErrX (rpcerr.ErrNotFound, rpcerr.ErrConflict, ...), and
//     errors.Is works on every call's error with either, being the same
//     values.
//   - Mirror: a local copy of what a verifier needs (keys, active bans,
//     revoked sessions whose tokens may still be valid), kept by following
//     Watch (docs/design.md sections 3 and 4). It builds a snapshot's new
//     state aside, part by part as the parts arrive, and applies it only
//     once all of them have (its Watch codec, snapwire.go, reads a part's
//     bans with protowire, only the fields the state keeps, and leaves
//     anything unexpected to the generic decoder), resumes from its revision and
//     store_id on any replica, knows it has caught up at the stream's
//     first checkpoint (sent as soon as it has), backs off when the authority asks it to
//     (SNAPSHOT_TOO_SOON), and reports the revision it has applied so that
//     waited writes can count it. Its state is immutable behind an atomic
//     pointer, so Check takes no lock, and Check counts its results per P
//     (a core), so that checks of one hot token on many cores write no
//     shared cache line. Verified tokens are cached, so a repeated token
//     costs no signature verification, while bans and revocations are
//     looked up on every check. Track ends open streams when a ban or a
//     revocation concerning them arrives. StartMirror runs one and waits
//     until it has loaded, failing fast on a refused API key; NewMirror
//     and Run are for a service (or test) that runs it itself.
//   - Tokens of external OIDC issuers (external.go): the issuers and their
//     keys come with the event stream (issuer_updated, issuer_deleted,
//     Snapshot.issuers), so a check never calls the identity provider; a
//     token whose kid is not one of the authority's keys is verified with
//     the keys of the issuer its iss names (token.VerifyExternal), cached
//     like a native token, and checked against the same bans, plus
//     revocations of its session (issuer and session claim) or of the
//     token (issuer and jti). Session tells which issuer, user, session,
//     token and claims.
//
// It imports gen/ (the API), token/ (the access-token format it shares
// with the authority), gRPC, protobuf and the standard library; never
// internal/ or server/, so that services depend on the API only. Nor do
// its tests: in package client_test, they start a real authority over a
// real bbolt file (or replicas over an embedded etcd, for failover) with
// authoritytest, whose imports_test.go fails if a file of client/ or
// interceptors/ imports either.
package client
