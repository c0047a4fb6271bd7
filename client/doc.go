// Package client is the Go SDK of Portcullis: a typed client of the
// authority's API, the error sentinels every call and check returns, and
// Mirror, which enforces bans locally by following the event stream.
//
//   - client.go: Dial, Client (the generated service clients behind one
//     connection) and the interceptor that converts every status with
//     FromStatus, so that errors.Is(err, ErrUserBanned) works on any call.
//   - replicas.go: the resolver behind Dial("host:port,host:port,..."),
//     the replicas of one authority: the connection uses one at a time
//     (pick_first, so a Watch stream and its progress reports reach the
//     same replica) and moves to another when it fails; the list is
//     reshuffled on every connection loss so that a dead replica is not
//     always tried first. A Mirror then resumes on the new replica from its
//     revision and store_id, and reports progress under the subscriber id
//     of the new stream.
//   - errors.go: the one table between ErrorInfo reasons, gRPC codes and
//     sentinels, both ways (FromStatus, Status), and *Error / *BanError.
//   - mirror.go, watch.go: Mirror, its options and its stream loop
//     (snapshot, changes, checkpoints — the first of a stream counted as
//     caught up in MirrorStats.CaughtUp —, reconnection with backoff and
//     resume, pruning). Refused with SNAPSHOT_TOO_SOON, the loop waits
//     the RetryInfo delay before reconnecting.
//   - progress.go: the mirror's progress reports, with a heartbeat every
//     second while it loads a snapshot.
//   - snapshotparts.go: gathers a snapshot's parts (Snapshot.more), so
//     that the state, revision and store_id change once, at the last
//     part, and a stream that ends mid-snapshot changes nothing.
//   - state.go, index.go, iptable.go: the immutable state behind an atomic
//     pointer, its copy-on-write sharded indexes, and the IP prefix table.
//   - cache.go: the lock-free cache of verified tokens.
//   - check.go: Mirror.Check, in the authority's order.
//   - track.go: Mirror.Track, which ends open streams when a ban or a
//     revocation arrives.
//
// It imports gen/ (the API), token/ (the access-token format it shares
// with the authority), gRPC, protobuf and the standard library; never
// internal/ or server/, so that services depend on the API only. Nor do
// its tests: in package client_test, they start a real authority over a
// real bbolt file (or replicas over an embedded etcd, for failover) with
// authoritytest, and authoritytest's imports_test.go fails if a file of
// client/ or interceptors/ imports either.
package client
