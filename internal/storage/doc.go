// Package storage defines the contract between Portcullis's domain logic
// (internal/authority) and its storage backends (internal/storage/bolt and
// internal/storage/etcd): the Store interface, the record types it
// stores, the event log with its watch primitive, and the sentinel errors
// every backend returns.
//
// It imports only the standard library. It knows nothing of gRPC, of the
// generated API types, or of any backend's types; no bbolt or etcd value
// crosses this interface, so that the domain can be tested and run on any
// backend that passes the conformance suite (storagetest).
//
// # Transactions
//
// Every state change is one call to Store.Update: the records it writes, the
// audit records it appends and the events it emits are committed atomically
// and durably (fsynced) before Update returns. A backend may group several
// concurrent Updates into one physical commit, so the function passed to
// Update must be idempotent: it may run more than once and must derive
// everything it writes from what it reads in the transaction (plus values
// computed before the call, such as fresh IDs or random tokens).
//
// One Update's size may be bounded by the backend: etcd commits an Update
// as one etcd transaction, which its --max-txn-ops (default 128 keys) and
// --max-request-bytes bound, and bolt has no bound. An Update beyond the
// bound fails with ErrTxnTooLarge and writes nothing. The contract reports
// the bound by that error rather than by a number the caller would have to
// predict its writes against: what one record costs differs by backend
// (etcd writes a record's index keys and the change's log key too), the
// bound is the cluster's configuration, which the store cannot read, and
// an error passes through every wrapper of a Store. A caller whose work
// can grow without bound (revoking every session a ban matches) tries one
// Update and, on ErrTxnTooLarge, splits the work into smaller ones; work
// that must be atomic must fit.
//
// Both backends lay records out alike (a table per kind, indexes keyed by
// the indexed fields), so Tx's write methods are one implementation,
// Writes, over the few primitives a backend provides (RecordTx).
//
// # Sweeping
//
// Records of ended sessions are deleted by the authority's sweep, through
// Tx.DeleteRefreshToken and Tx.DeleteSession (both idempotent: deleting an
// absent record is not an error, so replicas may sweep concurrently). A
// session's refresh tokens (every generation) are found with
// ReadTx.RefreshTokens, an index by session each backend keeps in step with
// PutRefreshToken and DeleteRefreshToken. Sweeping emits no events: mirrors
// never hold an ended session. Audit records past their retention are
// deleted with Tx.DeleteAuditRecord (idempotent too; it is passed the
// record, whose subject and actor name its index entries), found in ID order
// with ReadTx.AuditRecords: IDs are time-ordered, so the sweep stops at the
// first record within the retention. Bans and keys are not swept.
//
// # Revisions and the event log
//
// An Update that emits at least one event is assigned the next revision of
// the store. All events of one Update share that revision and are delivered
// together as one Change. Revisions are strictly increasing, gap-free per
// store for the bolt backend (the etcd backend uses etcd's own revisions,
// which are increasing but not gap-free: consumers must only rely on order).
// A revision only means something together with the store's ID: StoreID is
// random and created with the store.
//
// Watch delivers the Changes after a given revision, in order, none dropped,
// none duplicated. A revision older than the retained log yields
// ErrCompacted; the caller then rebuilds its state from a snapshot read with
// View (which reports the revision it reflects) and watches from there.
// Both backends keep their recent changes in one Ring (ring.go): each
// change is decoded once for every watcher near the head, and carries a
// Slot where a consumer keeps what it derives from it once for all (the
// server: the change encoded for the wire).
//
// # Presence
//
// A backend shared by several replicas also implements Presence: each
// replica publishes a small value that lives as long as the replica (the
// server publishes how far its mirrors have got, so that a write's wait
// can count the mirrors of every replica). bolt does not: one process owns
// the file, so there is no other replica to hear from.
//
// # External issuers
//
// Issuer records (issuers.go), keyed by the issuer URL, hold an external
// OIDC issuer's settings, its current public keys and the fetch status;
// ExternalRevocation records, keyed by issuer, kind and value, revoke one
// of its sessions or tokens until KeepUntil (swept by the authority).
//
// The records of OpenID Shared Signals (signals.go): SignalStream, keyed
// by ID, is an SSF stream this authority transmits, with its delivery
// position (written without an event); SignalTransmitter, keyed by ID, a
// transmitter it receives from; ReceivedSET, keyed by transmitter and jti
// (ReceivedSETKey), marks a SET already applied until KeepUntil. Their
// events (signal.*) carry a SignalNote naming the record, never the
// record and its secrets; ban.expired carries the Ban, whose
// ExpiryAnnounced says it was announced. The bolt backend creates their
// buckets with the others when it creates a file, and refuses files of
// the schema version before them (4).
//
// # Encoding
//
// Both backends store records as the JSON encoding/json makes of these
// types. A snapshot reads every ban, which encoding/json decodes slowly (a
// million bans took seconds): BanDecoder (banjson.go) decodes exactly what
// json.Marshal writes of a Ban, several times faster, and hands anything
// else back to encoding/json, so the result is always encoding/json's.
//
// # Time
//
// The store never reads the clock to decide anything: callers pass times in
// (record fields, queries), so that expiry is decided by comparing times and
// tests control the clock.
package storage
