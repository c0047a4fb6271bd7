package etcd

import (
	"fmt"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// indexEntry is one key in an index bucket.
type indexEntry struct {
	bucket string
	key    string
}

func (t *txn) sessionIndexes(s storage.Session) []indexEntry {
	e := []indexEntry{
		{bucketSessionsByTenant, t.k.indexKey(bucketSessionsByTenant, s.ID, s.TenantID)},
		{bucketSessionsByUser, t.k.indexKey(bucketSessionsByUser, s.ID, s.TenantID, s.UserID)},
	}
	if s.DeviceID != "" {
		e = append(e, indexEntry{bucketSessionsByDevice, t.k.indexKey(bucketSessionsByDevice, s.ID, s.TenantID, s.DeviceID)})
	}
	return e
}

func (t *txn) refreshTokenIndexes(r storage.RefreshToken) []indexEntry {
	return []indexEntry{{bucketRefreshBySession, t.k.refreshBySession(r.Hash, r.SessionID)}}
}

func (t *txn) banIndexes(b storage.Ban) []indexEntry {
	return []indexEntry{
		{bucketBansByTenant, t.k.indexKey(bucketBansByTenant, b.ID, b.TenantID)},
		{bucketBansBySubject, t.k.indexKey(bucketBansBySubject, b.ID, b.TenantID, string(b.Kind), b.Value)},
	}
}

func containsEntry(list []indexEntry, e indexEntry) bool {
	for _, x := range list {
		if x == e {
			return true
		}
	}
	return false
}

// reindex deletes the entries of old that new lacks and adds those of new
// that old lacks; unchanged entries are not rewritten (a revocation writes
// one key, and concurrent readers of the index are not disturbed).
func (t *txn) reindex(old, new []indexEntry) {
	for _, e := range old {
		if !containsEntry(new, e) {
			t.del(e.bucket, e.key)
		}
	}
	for _, e := range new {
		if !containsEntry(old, e) {
			t.writes[e.key] = pending{val: []byte{}}
		}
	}
}

// del buffers a delete. A delete also rewrites the bucket's guard key: a
// range read cannot see a key vanish, so transactions that iterated over
// the bucket compare the guard instead.
func (t *txn) del(bucket, key string) {
	t.writes[key] = pending{del: true}
	t.guards[bucket] = true
}

// put encodes rec and buffers it under key.
func (t *txn) put(kind, key string, rec any) error {
	val, err := encode(kind, rec)
	if err != nil {
		return err
	}
	t.writes[key] = pending{val: val}
	return nil
}

func (t *txn) PutSession(s storage.Session) error {
	if err := t.canWrite(); err != nil {
		return err
	}
	if err := s.CheckKeys(); err != nil {
		return err
	}
	key := t.k.record(bucketSessions, s.ID)
	old, exists, err := getRecordForWrite[storage.Session](t, bucketSessions, "session", key)
	if err != nil {
		return err
	}
	if err := t.put("session", key, s.UTC()); err != nil {
		return err
	}
	var oldIdx []indexEntry
	if exists {
		oldIdx = t.sessionIndexes(old)
	}
	t.reindex(oldIdx, t.sessionIndexes(s))
	return nil
}

// DeleteSession removes the session and its index entries; deleting an
// absent session is not an error (sweeping is idempotent).
func (t *txn) DeleteSession(id string) error {
	if err := t.canWrite(); err != nil {
		return err
	}
	key := t.k.record(bucketSessions, id)
	old, exists, err := getRecord[storage.Session](t, bucketSessions, "session", key)
	if err != nil || !exists {
		return err
	}
	t.reindex(t.sessionIndexes(old), nil)
	t.del(bucketSessions, key)
	return nil
}

func (t *txn) PutRefreshToken(r storage.RefreshToken) error {
	if err := t.canWrite(); err != nil {
		return err
	}
	if err := r.CheckKeys(); err != nil {
		return err
	}
	// A rotation writes a new hash: assumed absent on the first attempt,
	// which the commit checks, so the index costs no extra round trip.
	key := t.k.refresh(r.Hash)
	old, exists, err := getRecordForWrite[storage.RefreshToken](t, bucketRefreshTokens, "refresh token", key)
	if err != nil {
		return err
	}
	if err := t.put("refresh token", key, r.UTC()); err != nil {
		return err
	}
	var oldIdx []indexEntry
	if exists {
		oldIdx = t.refreshTokenIndexes(old)
	}
	t.reindex(oldIdx, t.refreshTokenIndexes(r))
	return nil
}

// DeleteRefreshToken removes a refresh token; an absent one is not an error.
func (t *txn) DeleteRefreshToken(hash []byte) error {
	if err := t.canWrite(); err != nil {
		return err
	}
	if err := storage.CheckRefreshTokenHash(hash); err != nil {
		return err
	}
	key := t.k.refresh(hash)
	old, exists, err := getRecord[storage.RefreshToken](t, bucketRefreshTokens, "refresh token", key)
	if err != nil || !exists {
		return err
	}
	t.reindex(t.refreshTokenIndexes(old), nil)
	t.del(bucketRefreshTokens, key)
	return nil
}

func (t *txn) PutBan(b storage.Ban) error {
	if err := t.canWrite(); err != nil {
		return err
	}
	if err := b.CheckKeys(); err != nil {
		return err
	}
	key := t.k.record(bucketBans, b.ID)
	old, exists, err := getRecordForWrite[storage.Ban](t, bucketBans, "ban", key)
	if err != nil {
		return err
	}
	if err := t.put("ban", key, b.UTC()); err != nil {
		return err
	}
	var oldIdx []indexEntry
	if exists {
		oldIdx = t.banIndexes(old)
	}
	t.reindex(oldIdx, t.banIndexes(b))
	return nil
}

func (t *txn) AppendAudit(a storage.AuditRecord) error {
	if err := t.canWrite(); err != nil {
		return err
	}
	if err := a.CheckKeys(); err != nil {
		return err
	}
	key := t.k.record(bucketAudit, a.ID)
	_, exists, err := t.getForWrite(bucketAudit, key)
	if err != nil {
		return err
	}
	if exists {
		return fmt.Errorf("storage/etcd: audit record %q: %w", a.ID, storage.ErrAlreadyExists)
	}
	return t.put("audit record", key, a.UTC())
}

// DeleteAuditRecord removes an audit record (sweeping); an absent one is
// not an error. It does not read the record first: the sweep has just
// read the range it deletes from (AuditRecords), which the commit checks,
// so a point read per record would only add round trips. Deleting an
// absent key in etcd changes nothing but the bucket's guard.
func (t *txn) DeleteAuditRecord(id string) error {
	if err := t.canWrite(); err != nil {
		return err
	}
	if err := (storage.AuditRecord{ID: id}).CheckKeys(); err != nil {
		return err
	}
	t.del(bucketAudit, t.k.record(bucketAudit, id))
	return nil
}

func (t *txn) PutAPIKey(k storage.APIKey) error {
	if err := t.canWrite(); err != nil {
		return err
	}
	if err := k.CheckKeys(); err != nil {
		return err
	}
	return t.put("api key", t.k.record(bucketAPIKeys, k.ID), k.UTC())
}

func (t *txn) PutSigningKey(k storage.SigningKey) error {
	if err := t.canWrite(); err != nil {
		return err
	}
	if err := k.CheckKeys(); err != nil {
		return err
	}
	return t.put("signing key", t.k.record(bucketSigningKeys, k.ID), k.UTC())
}

// DeleteSigningKey removes a signing key; an absent one is not an error.
func (t *txn) DeleteSigningKey(id string) error {
	if err := t.canWrite(); err != nil {
		return err
	}
	t.del(bucketSigningKeys, t.k.record(bucketSigningKeys, id))
	return nil
}

// Emit encodes the event now, so later changes to the caller's payload do
// not leak into the change.
func (t *txn) Emit(e storage.Event) error {
	if err := t.canWrite(); err != nil {
		return err
	}
	if err := e.Check(); err != nil {
		return fmt.Errorf("%w: %w", storage.ErrInvalidRecord, err)
	}
	raw, err := encode("event", e.UTC())
	if err != nil {
		return err
	}
	t.events = append(t.events, raw)
	return nil
}

func getRecordForWrite[T any](t *txn, bucket, kind, key string) (T, bool, error) {
	var zero T
	raw, ok, err := t.getForWrite(bucket, key)
	if err != nil || !ok {
		return zero, false, err
	}
	rec, err := decode[T](kind, key, raw)
	return rec, err == nil, err
}

// canWrite refuses writes in a View (whose txn is a ReadTx only) and after
// the function returned.
func (t *txn) canWrite() error {
	if !t.writable {
		return errReadOnly
	}
	return t.usable()
}
