// Package transmitter is Portcullis's OpenID Shared Signals (SSF 1.0)
// transmitter. It owns the event streams receivers create (storage
// SignalStream records, written in its own Updates with their
// signal.stream.* events and audit records), the mapping of the
// authority's event log onto Security Event Tokens (CAEP session-revoked,
// RISC account-disabled and account-enabled, SSF verification), and their
// delivery: push (RFC 8935, one worker per enabled push stream) and poll
// (RFC 8936).
//
// It imports internal/authority (signing keys, the ban-expiry announcer,
// IDs), internal/storage and the public package ssf; never gRPC or the
// generated API, and HTTP only as a client, to push. Its HTTP handlers are
// in package server (ssf_transmitter.go), which maps its sentinels.
//
// # Store and authority
//
// Config takes the Store as well as the Authority: the stream records are
// this package's own, so it reads and writes them itself, with their
// events and audit records in the same Update, the way the authority does
// for its records; the authority has no generic write to borrow (that
// would let any caller past the domain rules) and its Watch is the
// store's. The Authority is used for what is its own: the SET signing
// keys (SETSigner) and announcing expired bans (AnnounceExpiredBans).
//
// # Delivery
//
// Every replica runs Run: it follows the event log, starts one push worker
// per enabled push stream and restarts or stops it on the stream's
// signal.stream.* events. A worker reads the log from the stream's
// Position, maps each change to SETs, and POSTs them one at a time in
// order: 202 moves on, 400 skips that SET for good (counted and logged),
// anything else is retried with capped exponential backoff; after
// MaxOutage of failures the stream is paused with a reason. A stream whose
// receiver asked for portcullis_max_in_flight N > 1 has up to N SETs in
// flight at once, each naming its predecessor (ssf.SET.PrevJTI) unless
// every earlier one is acknowledged; Position then covers only the
// acknowledged prefix (window.go states the rules). Position is
// written (without an event) at most every 100 ms and when the worker
// stops, so a restart redelivers at most that much, with the same jti
// (stream ID, revision, index of the event in its change). Every replica
// runs a worker per push stream, but only the one holding the stream's
// push lease delivers it (lease.go); a new holder starts from Position.
// Delivery is at least once, receivers drop duplicates by jti.
// docs/signals.md has the rest.
package transmitter
