package storage

import (
	"encoding/json"
	"fmt"
)

// Both backends lay records out alike: a table per kind of record, keyed by
// its ID (a refresh token by its hash), and indexes whose keys are the
// indexed fields, each followed by a NUL byte, then the record's key.
// Writes is Tx's write half over that layout, written once: the checks,
// which indexes a record has, and keeping them in step with the records.
// A backend supplies only the primitives (RecordTx) that put and delete
// one key of its own.

// Table is one kind of record; its String is the kind's name in errors.
type Table uint8

const (
	TableSessions Table = iota
	TableRefreshTokens
	TableBans
	TableAuditRecords
	TableAPIKeys
	TableSigningKeys
	TableIssuers             // by issuer URL
	TableExternalRevocations // by ExternalRevocation.Key
	TableSignalStreams       // by SignalStream.ID
	TableSignalTransmitters  // by SignalTransmitter.ID
	TableReceivedSETs        // by ReceivedSET.Key
)

var tableNames = [...]string{"session", "refresh token", "ban", "audit record", "api key", "signing key", "issuer", "external revocation",
	"signal stream", "signal transmitter", "received SET"}

func (t Table) String() string { return tableNames[t] }

// Index is one secondary index.
type Index uint8

const (
	IndexSessionsByTenant Index = iota
	IndexSessionsByUser
	IndexSessionsByDevice
	IndexRefreshTokensBySession
	IndexBansByTenant
	IndexBansBySubject
	IndexAuditBySubject
	IndexAuditByActor
)

// IndexEntry is one key of an index: Prefix is the indexed fields, each
// followed by a NUL byte; ID the record's key (a refresh token's hash).
type IndexEntry struct {
	Index  Index
	Prefix string
	ID     string
}

// IndexPrefix joins parts, each followed by a NUL byte: the prefix of the
// index keys of the records matching them.
func IndexPrefix(parts ...string) string {
	n := 0
	for _, p := range parts {
		n += len(p) + 1
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = append(b, p...)
		b = append(b, 0)
	}
	return string(b)
}

// IndexEntries returns the index keys of the session.
func (s Session) IndexEntries() []IndexEntry {
	e := []IndexEntry{
		{IndexSessionsByTenant, IndexPrefix(s.TenantID), s.ID},
		{IndexSessionsByUser, IndexPrefix(s.TenantID, s.UserID), s.ID},
	}
	if s.DeviceID != "" {
		e = append(e, IndexEntry{IndexSessionsByDevice, IndexPrefix(s.TenantID, s.DeviceID), s.ID})
	}
	return e
}

// IndexEntries returns the index key of the refresh token.
func (r RefreshToken) IndexEntries() []IndexEntry {
	return []IndexEntry{{IndexRefreshTokensBySession, IndexPrefix(r.SessionID), string(r.Hash)}}
}

// IndexEntries returns the index keys of the ban.
func (b Ban) IndexEntries() []IndexEntry {
	return []IndexEntry{
		{IndexBansByTenant, IndexPrefix(b.TenantID), b.ID},
		{IndexBansBySubject, IndexPrefix(b.TenantID, string(b.Kind), b.Value), b.ID},
	}
}

// IndexEntries returns the index keys of the audit record: by subject
// (whatever the tenant: a subject query may name none) and by actor, each
// only when the field is set. Their key tails are the time-ordered IDs, so
// an indexed listing keeps the trail's order and its After cursor.
func (a AuditRecord) IndexEntries() []IndexEntry {
	var e []IndexEntry
	if a.Subject != "" {
		e = append(e, IndexEntry{IndexAuditBySubject, IndexPrefix(a.Subject), a.ID})
	}
	if a.Actor != "" {
		e = append(e, IndexEntry{IndexAuditByActor, IndexPrefix(a.Actor), a.ID})
	}
	return e
}

// RecordReader is what a backend's transaction, read-only too, provides
// for the point reads (Get).
type RecordReader interface {
	// ReadRecord decodes the record of t under id into rec (unless rec is
	// nil) and reports whether there is one. forWrite says the record is
	// read only to be replaced: a backend that checks its reads at commit
	// may assume it absent (etcd).
	ReadRecord(t Table, id string, forWrite bool, rec any) (bool, error)
}

// Get reads the record of t under id (a refresh token's hash), or fails
// with ErrNotFound: ReadTx's Session, RefreshToken, Ban and APIKey.
func Get[T any](rr RecordReader, t Table, id string) (T, error) {
	var v T
	ok, err := rr.ReadRecord(t, id, false, &v)
	switch {
	case err == nil && !ok && t == TableRefreshTokens:
		err = fmt.Errorf("storage: %s: %w", t, ErrNotFound) // no secret's hash in errors
	case err == nil && !ok:
		err = fmt.Errorf("storage: %s %q: %w", t, id, ErrNotFound)
	}
	return v, err
}

// RecordTx is what a backend's write transaction provides to Writes.
type RecordTx interface {
	RecordReader
	// Writable returns why the transaction may not write now, or nil.
	Writable() error
	PutRecord(t Table, id string, val []byte) error
	DeleteRecord(t Table, id string) error
	PutIndex(IndexEntry) error
	DeleteIndex(IndexEntry) error
}

// Writes implements the write methods of Tx over a RecordTx; a backend's
// transaction embeds it (NewWrites) and commits Events, the events
// emitted, each encoded when it was.
type Writes struct {
	rt     RecordTx
	Events []json.RawMessage
}

// NewWrites returns the write methods over rt.
func NewWrites(rt RecordTx) Writes { return Writes{rt: rt} }

// ready checks that the transaction may write, then the record's keys.
func (w *Writes) ready(checkKeys func() error) error {
	if err := w.rt.Writable(); err != nil {
		return err
	}
	return checkKeys()
}

func noKeys() error { return nil }

// put encodes rec and writes it under id. Records are stored as JSON;
// callers pass them with times in UTC, so that every time read back has
// the UTC location and no monotonic reading (JSON keeps the offset, not
// the zone).
func (w *Writes) put(t Table, id string, rec any) error {
	val, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("storage: encode %s: %w", t, err)
	}
	return w.rt.PutRecord(t, id, val)
}

// putIndexed writes rec under id and moves the index entries of the record
// it replaces (if any) to its own.
func putIndexed[T interface{ IndexEntries() []IndexEntry }](w *Writes, t Table, id string, checkKeys func() error, rec T) error {
	if err := w.ready(checkKeys); err != nil {
		return err
	}
	var old T
	exists, err := w.rt.ReadRecord(t, id, true, &old)
	if err != nil {
		return err
	}
	if err := w.put(t, id, rec); err != nil {
		return err
	}
	var oldIdx []IndexEntry
	if exists {
		oldIdx = old.IndexEntries()
	}
	return w.reindex(oldIdx, rec.IndexEntries())
}

// deleteIndexed deletes the record under id and its index entries; an
// absent record is not an error (sweeping is idempotent).
func deleteIndexed[T interface{ IndexEntries() []IndexEntry }](w *Writes, t Table, id string, checkKeys func() error) error {
	if err := w.ready(checkKeys); err != nil {
		return err
	}
	var old T
	exists, err := w.rt.ReadRecord(t, id, false, &old)
	if err != nil || !exists {
		return err
	}
	if err := w.reindex(old.IndexEntries(), nil); err != nil {
		return err
	}
	return w.rt.DeleteRecord(t, id)
}

// reindex deletes the entries of old that new lacks and adds those of new
// that old lacks. Unchanged entries are not rewritten: an unchanged index
// stays clean (a revocation writes one key), and concurrent readers and
// iterators over it are not disturbed.
func (w *Writes) reindex(old, new []IndexEntry) error {
	for _, e := range old {
		if !containsEntry(new, e) {
			if err := w.rt.DeleteIndex(e); err != nil {
				return err
			}
		}
	}
	for _, e := range new {
		if !containsEntry(old, e) {
			if err := w.rt.PutIndex(e); err != nil {
				return err
			}
		}
	}
	return nil
}

func containsEntry(list []IndexEntry, e IndexEntry) bool {
	for _, x := range list {
		if x == e {
			return true
		}
	}
	return false
}

func (w *Writes) PutSession(s Session) error {
	return putIndexed(w, TableSessions, s.ID, s.CheckKeys, s.UTC())
}

// DeleteSession removes the session and its index entries; deleting an
// absent session is not an error.
func (w *Writes) DeleteSession(id string) error {
	return deleteIndexed[Session](w, TableSessions, id, noKeys)
}

func (w *Writes) PutRefreshToken(r RefreshToken) error {
	return putIndexed(w, TableRefreshTokens, string(r.Hash), r.CheckKeys, r.UTC())
}

// DeleteRefreshToken removes a refresh token; an absent one is not an error.
func (w *Writes) DeleteRefreshToken(hash []byte) error {
	return deleteIndexed[RefreshToken](w, TableRefreshTokens, string(hash), func() error { return CheckRefreshTokenHash(hash) })
}

func (w *Writes) PutBan(b Ban) error {
	return putIndexed(w, TableBans, b.ID, b.CheckKeys, b.UTC())
}

func (w *Writes) AppendAudit(a AuditRecord) error {
	if err := w.ready(a.CheckKeys); err != nil {
		return err
	}
	exists, err := w.rt.ReadRecord(TableAuditRecords, a.ID, true, nil)
	if err != nil {
		return err
	}
	if exists {
		return fmt.Errorf("storage: audit record %q: %w", a.ID, ErrAlreadyExists)
	}
	if err := w.put(TableAuditRecords, a.ID, a.UTC()); err != nil {
		return err
	}
	return w.reindex(nil, a.IndexEntries())
}

// DeleteAuditRecord removes an audit record and its index entries
// (sweeping); an absent one is not an error. The caller passes the record
// it has just read (AuditRecords) instead of an ID, and Writes does not
// read it again: audit records never change, a backend that checks reads
// at commit (etcd) checks that range, and a read per record would only
// cost (a round trip each over etcd).
func (w *Writes) DeleteAuditRecord(a AuditRecord) error {
	if err := w.ready(a.CheckKeys); err != nil {
		return err
	}
	if err := w.reindex(a.IndexEntries(), nil); err != nil {
		return err
	}
	return w.rt.DeleteRecord(TableAuditRecords, a.ID)
}

func (w *Writes) PutAPIKey(k APIKey) error {
	if err := w.ready(k.CheckKeys); err != nil {
		return err
	}
	return w.put(TableAPIKeys, k.ID, k.UTC())
}

func (w *Writes) PutSigningKey(k SigningKey) error {
	if err := w.ready(k.CheckKeys); err != nil {
		return err
	}
	return w.put(TableSigningKeys, k.ID, k.UTC())
}

// DeleteSigningKey removes a signing key; an absent one is not an error.
func (w *Writes) DeleteSigningKey(id string) error {
	if err := w.rt.Writable(); err != nil {
		return err
	}
	return w.rt.DeleteRecord(TableSigningKeys, id)
}

func (w *Writes) PutIssuer(i Issuer) error {
	if err := w.ready(i.CheckKeys); err != nil {
		return err
	}
	return w.put(TableIssuers, i.URL, i.UTC())
}

// DeleteIssuer removes an issuer; an absent one is not an error.
func (w *Writes) DeleteIssuer(url string) error {
	if err := w.rt.Writable(); err != nil {
		return err
	}
	return w.rt.DeleteRecord(TableIssuers, url)
}

func (w *Writes) PutExternalRevocation(r ExternalRevocation) error {
	if err := w.ready(r.CheckKeys); err != nil {
		return err
	}
	return w.put(TableExternalRevocations, r.Key(), r.UTC())
}

// DeleteExternalRevocation removes a revocation; an absent one is not an
// error.
func (w *Writes) DeleteExternalRevocation(key string) error {
	if err := w.rt.Writable(); err != nil {
		return err
	}
	return w.rt.DeleteRecord(TableExternalRevocations, key)
}

func (w *Writes) PutSignalStream(s SignalStream) error {
	if err := w.ready(s.CheckKeys); err != nil {
		return err
	}
	return w.put(TableSignalStreams, s.ID, s.UTC())
}

// DeleteSignalStream removes a stream; an absent one is not an error.
func (w *Writes) DeleteSignalStream(id string) error {
	if err := w.rt.Writable(); err != nil {
		return err
	}
	return w.rt.DeleteRecord(TableSignalStreams, id)
}

func (w *Writes) PutSignalTransmitter(x SignalTransmitter) error {
	if err := w.ready(x.CheckKeys); err != nil {
		return err
	}
	return w.put(TableSignalTransmitters, x.ID, x.UTC())
}

// DeleteSignalTransmitter removes a transmitter; an absent one is not an
// error.
func (w *Writes) DeleteSignalTransmitter(id string) error {
	if err := w.rt.Writable(); err != nil {
		return err
	}
	return w.rt.DeleteRecord(TableSignalTransmitters, id)
}

func (w *Writes) PutReceivedSET(r ReceivedSET) error {
	if err := w.ready(r.CheckKeys); err != nil {
		return err
	}
	return w.put(TableReceivedSETs, r.Key(), r.UTC())
}

// DeleteReceivedSET removes a received SET's mark; an absent one is not
// an error.
func (w *Writes) DeleteReceivedSET(key string) error {
	if err := w.rt.Writable(); err != nil {
		return err
	}
	return w.rt.DeleteRecord(TableReceivedSETs, key)
}

// Emit encodes the event now, so later changes to the caller's payload do
// not leak into the change.
func (w *Writes) Emit(e Event) error {
	if err := w.rt.Writable(); err != nil {
		return err
	}
	if err := e.Check(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	raw, err := json.Marshal(e.UTC())
	if err != nil {
		return fmt.Errorf("storage: encode event: %w", err)
	}
	w.Events = append(w.Events, raw)
	return nil
}
