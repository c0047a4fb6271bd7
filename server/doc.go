// Package server is the gRPC face of the authority: one handler per RPC of
// portcullis.v1 that validates the request's shape, calls the domain
// (internal/authority) and converts the result. It owns:
//
//   - errors.go: the one place where domain and storage errors become gRPC
//     statuses with a google.rpc.ErrorInfo (domain "portcullis.dev", reason
//     from portcullis.v1.ErrorReason without its prefix). Anything it does
//     not recognise becomes Internal with a generic message, and the cause
//     is logged; no handler returns codes.Unknown.
//   - auth.go: API-key authentication and the scope table, one rule per
//     RPC, applied by go-grpc-middleware's auth interceptor. Health and
//     reflection are public (selector); RefreshSession is authorised by the
//     refresh token itself.
//   - deniedaudit.go: how denied calls are audited. Up to
//     Limits.DeniedAuditPerSecond (across every address) each gets a
//     call.denied record; past it, and when the per-address limit of failed
//     authentications refused the call, it is counted into a
//     call.denied.summary record written at most once per
//     Limits.DeniedSummaryInterval (and by FlushDeniedAudit at shutdown),
//     so every denied call is in the trail once, alone or in a count.
//   - sweeper.go: RunSweeper deletes ended sessions and old audit records
//     every interval and counts them in portcullis_swept_total{kind}.
//   - events.go: EventService.Watch, snapshot-then-deltas over the store's
//     watch primitive, with checkpoints (the first of a stream, sent as
//     soon as it has caught up, is the caught-up marker) and a bound on
//     slow subscribers.
//     A snapshot is sent as parts of at most Options.SnapshotPartSize
//     (snapshotparts.go; Snapshot.more), each built and encoded once for
//     every subscriber (snapshot.go, encode.go); a subscriber's position
//     moves only with the last part.
//   - progress.go: the mirrors' progress reports (ReportProgress,
//     StreamProgress) and the wait of a write (enforcement), woken by
//     reports, never by a timer. A report may not exceed the revision
//     offered on its stream (REVISION_NOT_SENT); a mirror loading its
//     snapshot is judged by the load timeout, not the progress timeout.
//   - snapbackoff.go: refuses, with SNAPSHOT_TOO_SOON and a RetryInfo,
//     another snapshot to a mirror identity that left its last ones
//     unacknowledged, within a doubling window.
//   - fleet.go: when the store is shared by several replicas
//     (storage.Presence, etcd), each replica publishes a summary of its
//     reporting mirrors (a count and (revision, count) pairs, 2 ms after a
//     report, at most one write per 10 ms, only when it changed) under a
//     random replica ID and
//     follows the others' into a view; a write's wait then counts the
//     mirrors of every replica known at the write, waits until each has
//     published that all its mirrors applied it, and stops waiting for a
//     replica whose presence is gone. Other replicas' mirrors are counted,
//     not named. With bbolt (one replica) none of this runs.
//   - limits.go, msgsize.go: the per-caller and per-connection limits; the
//     request size limit is checked by the server's codec before decoding,
//     so that its refusal carries an ErrorInfo like every other limit's.
//   - reflection.go: server reflection from the descriptors make generate
//     keeps with their comments, so that grpcurl describe shows them.
//
// It may import internal/authority, internal/storage, gen/ and grpc; it is
// imported only by cmd/.
package server
