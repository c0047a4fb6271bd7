// Package etcd is the replicated storage backend: it implements
// storage.Store over an etcd cluster (go.etcd.io/etcd/client/v3), under a
// configurable key prefix, so that several stateless authority replicas
// share one state and serve one event stream (docs/design.md section 10).
//
// # Layout
//
// Records are JSON of the storage record types (times in UTC), one key
// each, with index keys shaped like the bolt backend's buckets:
//
//	<prefix>/sessions/<id>, /bans/<id>, /audit/<id>, /apikeys/<id>,
//	/signingkeys/<id>, /refresh/<hex of the hash>
//	<prefix>/idx/sessions_by_user/<tenant>\x00<user>\x00<id> (and by
//	tenant, by device; bans by tenant and by subject; refresh tokens by
//	session, as <session>\x00<hex of the hash>; audit records by subject
//	and by actor), empty values
//	<prefix>/log            the last change; its versions are the event log
//	<prefix>/meta/store     schema version and the nonce of the store ID
//	<prefix>/meta/compacted the compaction mark of Store.Compact
//	<prefix>/guard/<bucket> rewritten by every delete in <bucket>
//
// The layout has a schema version, in meta/store. Open refuses a store of
// another version than its own, older or newer: there is no migration
// before 1.0 (README, Compatibility).
//
// # Transactions
//
// Update runs its function against a snapshot: every read is made at one
// etcd revision R (the one of the first read), writes are buffered (and
// seen by later reads and by iterators, which also tolerate writes while
// they iterate), and the function's read set is recorded. The commit is
// one etcd transaction: If(nothing read changed since R) Then(every write,
// and the change). "Nothing changed" is, for a key read, ModRevision(key)
// equal to what was read (0 when absent), and for a range iterated,
// ModRevision < R+1 over the range plus the bucket's guard key unchanged
// (a range comparison cannot see a key vanish, so deletes rewrite the
// guard). When the comparisons fail, another writer got there first: the
// function runs again on a fresh snapshot, up to Options.MaxAttempts
// times. So two replicas racing on one refresh token serialize: exactly
// one rotation commits, and the other attempt, run again, sees the token
// superseded.
//
// The first attempt is the cheap one: its reads are serializable (no
// quorum round trip), and a record the function writes without having
// read it (a new ban, session or audit record) is assumed not to exist
// rather than read, which is an exact comparison of the commit. A stale
// snapshot or a wrong assumption only makes the commit fail; the next
// attempts read linearizably and assume nothing. An attempt that writes
// nothing, or whose function fails, is checked with a read-only
// transaction of the same comparisons before its answer stands. View is
// linearizable from its first read.
//
// etcd bounds one transaction by --max-txn-ops (default 128) for the
// comparisons and, separately, for the writes. The store keeps its
// comparisons under Options.MaxTxnOps by merging neighbouring reads of a
// bucket into covering ranges (closest keys first), which can only add
// false conflicts. The writes are not split, since that would break the
// Update's atomicity: an Update writing more keys than the cluster allows,
// or more bytes than its --max-request-bytes, fails with an error wrapping
// storage.ErrTxnTooLarge (and naming the bound) and writes nothing. The
// store cannot know the cluster's bounds in advance, so it reports them
// this way rather than as a number. The authority answers it where its
// work can grow without bound: a ban matching many sessions commits the
// ban, its event and audit record with as many revocations as fit, then
// revokes the rest in later Updates (internal/authority's revokeAll).
// Raising --max-txn-ops on every member (e.g. 4096) keeps such a ban one
// transaction and one change.
//
// # Events and revisions
//
// An Update that emits events writes them, as one JSON value, to the log
// key in its commit. The change's revision is that transaction's etcd
// revision, which Update returns: increasing, shared by every replica, and
// not gap-free (other keys' writes use revisions too); consumers rely only
// on order. ReadTx.Revision is the log key's ModRevision at the snapshot.
//
// The event log is the history of the log key: each version is one
// change. One etcd watch per store (the hub) follows it from the head,
// decodes each change once and keeps the last 1024 in the store's
// storage.Ring for every watcher near the head, which all share them (read-only, as the contract says), so a
// replica serving many Watch streams costs etcd one watch, not one per
// stream. Watch(after) starts from the hub when it holds every change after
// after; otherwise the watcher follows an etcd watch of its own from
// after+1 and moves to the hub once it has caught up. The hub and such a
// watcher read the log the same way, through one follower (follow.go):
// the etcd client resumes a watch after a lost connection from the
// revision after the last one it delivered, and the follower drops
// anything at or before its last revision, so nothing is delivered twice;
// when etcd ends a watch (a member without a leader), it is opened again
// after the last revision; a deleted log key (a wiped prefix) fails it with
// storage.ErrCompacted. When the hub's follower fails, the hub starts over
// at the head, and the watchers it no longer covers meet the failure
// through their own.
//
// etcd's history is compacted by etcd itself (--auto-compaction-mode and
// --auto-compaction-retention; etcd's default is never, which an operator
// must change, since every overwritten record stays in the history until
// then). Compaction is cluster-wide, for every key. A Watch whose start is
// compacted fails with storage.ErrCompacted only if a change was lost: if
// the log key did not change between the watcher's revision and the
// compaction, the watch goes on from there. Store.Compact(r) raises a mark
// under the prefix (Watch before it fails with ErrCompacted); it does not
// compact etcd, which would affect every other user of the cluster.
//
// # Presence
//
// The store implements storage.Presence: PublishPresence puts
// <prefix>/presence/<id> under one etcd lease per store (TTL
// Options.PresenceTTL, default 10s), granted at the first publish and kept
// alive by a concurrency.Session while the store is open. Close revokes
// the lease, so the values go at once; a process that dies, or loses etcd for longer
// than the TTL, loses them when the lease expires. When the session ends
// while the store is open (the lease expired during a partition), the store
// grants a new lease and puts its values again. WatchPresence reads the
// prefix once and follows it with an etcd watch from that revision,
// reading it again when etcd ends the watch. Presence keys carry no event
// and do not touch the log key: they never change a store revision.
//
// # Store ID
//
// The store ID is hex(SHA-256(cluster ID, prefix, nonce))[:32], where the
// nonce is created with the store (meta/store). Every replica and every
// restart computes the same; a wiped prefix, or the data restored into a
// new cluster, gets a new one, so mirrors take a fresh snapshot instead of
// misreading revisions of another history.
//
// # Imports
//
// It imports internal/storage, etcd's client and API packages, zap (the
// client's logger, whose entries it hands to the process's slog logger,
// lowering to debug the client's warning of a transaction too large, which
// the store reports as storage.ErrTxnTooLarge) and the standard library.
// Never etcd's server packages: only tests run a server (etcdtest), so the
// authority's binary does not link one.
package etcd
