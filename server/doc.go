// Package server is the gRPC face of the authority: one handler per RPC of
// portcullis.v1 that validates the request's shape, calls the domain
// (internal/authority) and converts the result.
//
// It owns:
//
//   - The mapping of errors to statuses, in one place (errors.go): each
//     domain, storage and server error names an entry of the error
//     catalogue (package rpcerr: reason, code, ErrorInfo, RetryInfo;
//     docs/design.md section 5), which builds the status. Anything it does not
//     recognise becomes Internal with a generic message, and the cause is
//     logged; no handler returns codes.Unknown.
//   - Authentication and authorisation (docs/design.md section 6): API
//     keys, and the scope table with one rule per RPC, applied by
//     go-grpc-middleware's auth interceptor. Health and reflection are
//     public; RefreshSession is authorised by the refresh token itself.
//     Denied calls are audited one by one up to a global rate, and counted
//     into periodic summary records past it, so that every denied call is
//     in the trail once, alone or in a count.
//   - The event stream (docs/design.md section 3): Watch, snapshot then
//     changes over the store's watch primitive, with checkpoints (the
//     first of a stream, sent as soon as it has caught up with the store,
//     is the caught-up marker) and a bound on slow subscribers. A snapshot is sent in parts, each encoded
//     once for every subscriber that needs it as the authority reads the
//     store (no record or message of it is held whole; bans are encoded
//     straight from their records, banwire.go), as is each change (kept in
//     the storage.Slot of the store's ring of recent changes);
//     a subscriber's position moves only with the last part. A
//     mirror identity that keeps leaving snapshots unacknowledged is
//     refused another within a doubling window (SNAPSHOT_TOO_SOON).
//   - The handlers of the progress protocol (StreamProgress,
//     ListSubscribers, the wait of a write): they validate, call the
//     registry of subscribers and the waits of internal/fleet (the domain
//     of mirrors' progress, tested without gRPC) and convert its results.
//   - The limits per caller and per connection, including the request
//     size, which the server's codec checks before decoding so that its
//     refusal carries an ErrorInfo like every other limit's.
//   - The sweeper that runs the domain's sweeps of ended sessions and old
//     audit records every interval, and the server's metrics.
//   - The Shared Signals transmitter's HTTP endpoints (ssf_transmitter.go:
//     configuration, stream management, poll; API keys of scope signals,
//     each managing its own streams) and its metrics; the rules are
//     internal/transmitter's.
//   - The Shared Signals receiver: SignalService (signals.go, scope
//     admin), the push endpoint POST /ssf/receive/{transmitter_id}
//     (ssf_receiver.go: RFC 8935 answers through writeHTTPError, a wrong
//     Authorization audited like a refused call) and its metrics
//     (signalmetrics.go); the rules are internal/receiver's, which the
//     server runs itself when Options.Receiver is nil (authoritytest).
//   - RFC 7009 token revocation on the HTTP listener (oauth_revoke.go,
//     POST /oauth2/revoke): the client is an API key with sessions:write
//     (Bearer, or the HTTP Basic password), refused ones audited like
//     refused gRPC calls; errors are writeHTTPError's JSON with RFC 6749's
//     "error".
//   - Server reflection from the descriptors that make generate keeps with
//     their comments, so that grpcurl describe shows them.
//
// It may import internal/authority, internal/fleet, internal/transmitter, internal/receiver, ssf and internal/storage
// (the domain it serves; the store only through the authority), gen/ (the API), gRPC and protobuf, go-grpc-middleware, the
// Prometheus client and x/time/rate; nothing that services link (client/,
// interceptors/), which must not depend on it either. It is imported by
// cmd/, and by authoritytest and bench/, which run a real server.
package server
