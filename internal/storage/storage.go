package storage

import (
	"context"
	"errors"
	"iter"
)

// Sentinel errors every backend returns. Compare with errors.Is.
var (
	// ErrNotFound: the record does not exist.
	ErrNotFound = errors.New("storage: not found")
	// ErrAlreadyExists: a create found a record with the same key.
	ErrAlreadyExists = errors.New("storage: already exists")
	// ErrCompacted: the requested revision is older than the retained event
	// log; rebuild from a snapshot.
	ErrCompacted = errors.New("storage: revision compacted")
	// ErrFutureRevision: the requested revision is newer than the store's
	// current one (the caller followed another store's history).
	ErrFutureRevision = errors.New("storage: revision is in the future")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("storage: closed")
	// ErrTxnTooLarge: the Update wrote more than the backend commits in one
	// transaction (etcd bounds the keys and bytes of one; bolt never
	// returns it). Nothing was written. The caller may split the work into
	// several smaller Updates, giving up their atomicity (see the package
	// doc).
	ErrTxnTooLarge = errors.New("storage: update too large for one transaction")
	// ErrInvalidRecord: a write the store refuses whatever its contents
	// (an empty key, a NUL byte in a value that goes into an index key);
	// the domain validates first, so it means a bug. See CheckKeys.
	ErrInvalidRecord = errors.New("storage: invalid record")
	// ErrConflict: an Update lost the race against concurrent writers of
	// what it read too many times in a row and gave up. Nothing was
	// written; the caller may retry.
	ErrConflict = errors.New("storage: update conflicted with concurrent writers")
)

// Store is the persistent state of one Portcullis authority (or of a fleet
// of replicas sharing one backend). All methods are safe for concurrent use.
type Store interface {
	// StoreID identifies this store's history. It is random, created with
	// the store and never changes.
	StoreID() string

	// View runs fn in a read-only, consistent snapshot of the store.
	View(ctx context.Context, fn func(ReadTx) error) error

	// Update runs fn in one atomic transaction and makes it durable before
	// returning. If fn returns an error nothing is written and that error is
	// returned unchanged. If what fn wrote is more than the backend can
	// commit at once, nothing is written and the error wraps ErrTxnTooLarge. If fn emitted events, the change is assigned the
	// next revision, which Update returns; otherwise it returns the current
	// revision. fn may be called more than once (see the package doc).
	Update(ctx context.Context, fn func(Tx) error) (revision int64, err error)

	// Watch returns a Watcher that yields the changes with a revision
	// strictly greater than afterRevision, in order. It fails with
	// ErrCompacted when afterRevision is older than the retained log and
	// with ErrFutureRevision when it is newer than the current revision.
	Watch(ctx context.Context, afterRevision int64) (Watcher, error)

	// Compact discards the changes with a revision up to and including
	// revision from the event log: afterwards Watch(ctx, r) with r <
	// revision fails with ErrCompacted. Backends also compact by
	// themselves to bound the log (bolt: a retention count).
	Compact(ctx context.Context, revision int64) error

	// Close releases the store. Watchers end with ErrClosed.
	Close() error
}

// Presence is implemented by backends that several replicas share (etcd),
// not by those one process owns (bolt): callers type-assert a Store to it
// and, without it, have no other replicas to hear from. Each replica
// publishes one small value under an ID of its choosing; every replica sees
// every published value. A value lives only as long as its publisher: the
// backend removes it when the store is closed and when the process stops
// renewing it (it crashed or lost the backend), so a reader never waits on
// a replica that is gone. The store knows nothing of what the values mean.
type Presence interface {
	// PublishPresence sets this store's value under id (at most
	// MaxPresenceValue bytes; id not empty), replacing the previous one.
	PublishPresence(ctx context.Context, id string, value []byte) error

	// WatchPresence yields every replica's value by ID: the whole current
	// map at once, and again after every change. Maps may be coalesced (a
	// slow reader gets the latest, not every one) and are the reader's to
	// keep. The channel is closed when ctx ends or the store closes.
	WatchPresence(ctx context.Context) (<-chan map[string][]byte, error)
}

// MaxPresenceValue bounds a Presence value: every replica reads every
// value after every change, so they must stay small.
const MaxPresenceValue = 4096

// Watcher yields the changes of one Watch call.
type Watcher interface {
	// Next blocks until the next change is committed and returns it, or
	// returns ctx's error when ctx ends first (the watcher stays usable), or
	// ErrCompacted when the watcher fell behind the retained log, or
	// ErrClosed when the store closed. The returned Change (its events and
	// their payloads) may be shared with other watchers: treat it as
	// read-only, except its Slot.
	Next(ctx context.Context) (Change, error)
	// Revision is the revision of the last change returned by Next (or the
	// afterRevision Watch was called with).
	Revision() int64
	// Close releases the watcher.
	Close()
}

// ReadTx reads a consistent snapshot of the store. Iterators yield records
// in ascending key order (IDs are time-ordered, so mostly creation order)
// and stop at the first error, which they yield as the second value.
type ReadTx interface {
	// Revision is the revision of the last change visible in this snapshot.
	Revision() int64

	Session(id string) (Session, error)
	// Sessions yields the sessions matching q with an ID greater than
	// q.After.
	Sessions(q SessionQuery) iter.Seq2[Session, error]
	// RefreshToken looks a refresh token up by the hash of its secret.
	RefreshToken(hash []byte) (RefreshToken, error)
	// RefreshTokens yields every refresh token record of a session (the
	// current one and the superseded ones), in hash order, through an index
	// by session: sweeping finds an expired session's tokens without
	// reading anyone else's.
	RefreshTokens(sessionID string) iter.Seq2[RefreshToken, error]

	Ban(id string) (Ban, error)
	// Bans yields the bans matching q with an ID greater than q.After.
	Bans(q BanQuery) iter.Seq2[Ban, error]

	// AuditRecords yields the audit records matching q with an ID greater
	// than q.After. IDs are time-ordered, so a reader that wants the
	// records older than a cutoff (sweeping) reads from the start and
	// stops at the first newer one; From and To only filter, the scan
	// goes on to the end. A query naming a subject or an actor reads
	// through that index (AuditRecord.IndexEntries; the subject's when it
	// names both), in the same ID order: its cost is the records of that
	// subject or actor, not the whole trail.
	AuditRecords(q AuditQuery) iter.Seq2[AuditRecord, error]

	APIKey(id string) (APIKey, error)
	APIKeys() iter.Seq2[APIKey, error]

	SigningKeys() iter.Seq2[SigningKey, error]

	// Issuer reads an external issuer by URL.
	Issuer(url string) (Issuer, error)
	// Issuers yields every external issuer, by URL.
	Issuers() iter.Seq2[Issuer, error]
	// ExternalRevocation reads the revocation with the given key
	// (ExternalRevocationKey).
	ExternalRevocation(key string) (ExternalRevocation, error)
	// ExternalRevocations yields every external revocation, by key.
	ExternalRevocations() iter.Seq2[ExternalRevocation, error]

	// SignalStream reads an SSF stream this authority transmits, by ID.
	SignalStream(id string) (SignalStream, error)
	// SignalStreams yields every stream, by ID.
	SignalStreams() iter.Seq2[SignalStream, error]
	// SignalTransmitter reads a transmitter this authority receives
	// from, by ID.
	SignalTransmitter(id string) (SignalTransmitter, error)
	// SignalTransmitters yields every transmitter, by ID.
	SignalTransmitters() iter.Seq2[SignalTransmitter, error]
	// ReceivedSET reads the mark of a received SET by key
	// (ReceivedSETKey).
	ReceivedSET(key string) (ReceivedSET, error)
	// ReceivedSETs yields every received SET's mark, by key (so by
	// transmitter, then jti).
	ReceivedSETs() iter.Seq2[ReceivedSET, error]
}

// Tx reads and writes within one Update.
type Tx interface {
	ReadTx

	// PutSession creates or replaces a session (and its indexes).
	PutSession(Session) error
	// DeleteSession removes an expired session and its indexes (sweeping);
	// an absent one is not an error. It does not touch the session's
	// refresh tokens: the caller deletes those (RefreshTokens) first.
	DeleteSession(id string) error
	// PutRefreshToken records a refresh token hash (new or superseded)
	// and indexes it under its SessionID, which must not be empty.
	PutRefreshToken(RefreshToken) error
	// DeleteRefreshToken removes a refresh token hash and its index entry
	// (sweeping); an absent one is not an error.
	DeleteRefreshToken(hash []byte) error

	// PutBan creates or replaces a ban (and its indexes).
	PutBan(Ban) error

	// AppendAudit appends an audit record. Its ID must be new.
	AppendAudit(AuditRecord) error
	// DeleteAuditRecord removes an audit record past its retention and
	// its index entries (sweeping); an absent one is not an error. The
	// sweep finds the records to delete with AuditRecords, in ID (time)
	// order, and passes each as read: its subject and actor name the index
	// entries to delete, with no read per record.
	DeleteAuditRecord(AuditRecord) error

	// PutAPIKey creates or replaces an API key.
	PutAPIKey(APIKey) error

	// PutSigningKey creates or replaces a signing key.
	PutSigningKey(SigningKey) error
	// DeleteSigningKey removes a signing key no token can still use.
	DeleteSigningKey(id string) error

	// PutIssuer creates or replaces an external issuer.
	PutIssuer(Issuer) error
	// DeleteIssuer removes an external issuer; an absent one is not an
	// error.
	DeleteIssuer(url string) error
	// PutExternalRevocation creates or replaces an external revocation.
	PutExternalRevocation(ExternalRevocation) error
	// DeleteExternalRevocation removes an external revocation past its
	// KeepUntil (sweeping); an absent one is not an error.
	DeleteExternalRevocation(key string) error

	// PutSignalStream creates or replaces an SSF stream.
	PutSignalStream(SignalStream) error
	// DeleteSignalStream removes a stream; an absent one is not an error.
	DeleteSignalStream(id string) error
	// PutSignalTransmitter creates or replaces a transmitter.
	PutSignalTransmitter(SignalTransmitter) error
	// DeleteSignalTransmitter removes a transmitter; an absent one is not
	// an error.
	DeleteSignalTransmitter(id string) error
	// PutReceivedSET records a received SET (keyed by ReceivedSET.Key).
	PutReceivedSET(ReceivedSET) error
	// DeleteReceivedSET removes a received SET's mark past its KeepUntil
	// (sweeping); an absent one is not an error.
	DeleteReceivedSET(key string) error

	// Emit appends an event to this transaction's change. Its Revision is
	// assigned at commit.
	Emit(Event) error
}
