package bolt

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// writeTx is one update function's view of the writer's bbolt transaction.
// Several writeTx share one bbolt transaction in a group commit; each keeps
// its own events.
type writeTx struct {
	readTx
	events []json.RawMessage // encoded when emitted
}

var _ storage.Tx = (*writeTx)(nil)

// indexEntry is one key in an index bucket.
type indexEntry struct {
	bucket []byte
	key    []byte
}

func sessionIndexes(s storage.Session) []indexEntry {
	e := []indexEntry{
		{bucketSessionsByTenant, indexKey(s.ID, s.TenantID)},
		{bucketSessionsByUser, indexKey(s.ID, s.TenantID, s.UserID)},
	}
	if s.DeviceID != "" {
		e = append(e, indexEntry{bucketSessionsByDevice, indexKey(s.ID, s.TenantID, s.DeviceID)})
	}
	return e
}

func refreshTokenIndexes(r storage.RefreshToken) []indexEntry {
	return []indexEntry{{bucketRefreshTokensBySession, append(indexPrefix(r.SessionID), r.Hash...)}}
}

func banIndexes(b storage.Ban) []indexEntry {
	return []indexEntry{
		{bucketBansByTenant, indexKey(b.ID, b.TenantID)},
		{bucketBansBySubject, indexKey(b.ID, b.TenantID, string(b.Kind), b.Value)},
	}
}

func containsEntry(list []indexEntry, e indexEntry) bool {
	for _, x := range list {
		if bytes.Equal(x.bucket, e.bucket) && bytes.Equal(x.key, e.key) {
			return true
		}
	}
	return false
}

// reindex deletes the entries of old that new lacks and adds those of new
// that old lacks. Untouched entries are not rewritten: an unchanged index
// stays clean, and iterators over it keep their place.
func (t *writeTx) reindex(old, new []indexEntry) error {
	for _, e := range old {
		if containsEntry(new, e) {
			continue
		}
		b, err := t.bucket(e.bucket)
		if err != nil {
			return err
		}
		if err := b.Delete(e.key); err != nil {
			return fmt.Errorf("storage/bolt: delete index %s entry: %w", e.bucket, err)
		}
	}
	for _, e := range new {
		if containsEntry(old, e) {
			continue
		}
		b, err := t.bucket(e.bucket)
		if err != nil {
			return err
		}
		if err := b.Put(e.key, nil); err != nil {
			return fmt.Errorf("storage/bolt: write index %s entry: %w", e.bucket, err)
		}
	}
	return nil
}

// put writes an encoded record under key.
func (t *writeTx) put(bucket []byte, kind string, key []byte, rec any) error {
	val, err := encode(kind, rec)
	if err != nil {
		return err
	}
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	if err := b.Put(key, val); err != nil {
		return fmt.Errorf("storage/bolt: write %s: %w", kind, err)
	}
	return nil
}

func (t *writeTx) del(bucket []byte, kind string, key []byte) error {
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	if err := b.Delete(key); err != nil {
		return fmt.Errorf("storage/bolt: delete %s: %w", kind, err)
	}
	return nil
}

func (t *writeTx) PutSession(s storage.Session) error {
	if err := t.usable(); err != nil {
		return err
	}
	if err := s.CheckKeys(); err != nil {
		return err
	}
	old, exists, err := get[storage.Session](&t.readTx, bucketSessions, "session", []byte(s.ID))
	if err != nil {
		return err
	}
	if err := t.put(bucketSessions, "session", []byte(s.ID), s.UTC()); err != nil {
		return err
	}
	var oldIdx []indexEntry
	if exists {
		oldIdx = sessionIndexes(old)
	}
	return t.reindex(oldIdx, sessionIndexes(s))
}

// DeleteSession removes the session and its index entries; deleting an
// absent session is not an error (sweeping is idempotent).
func (t *writeTx) DeleteSession(id string) error {
	old, exists, err := get[storage.Session](&t.readTx, bucketSessions, "session", []byte(id))
	if err != nil || !exists {
		return err
	}
	if err := t.reindex(sessionIndexes(old), nil); err != nil {
		return err
	}
	return t.del(bucketSessions, "session", []byte(id))
}

func (t *writeTx) PutRefreshToken(r storage.RefreshToken) error {
	if err := t.usable(); err != nil {
		return err
	}
	if err := r.CheckKeys(); err != nil {
		return err
	}
	old, exists, err := get[storage.RefreshToken](&t.readTx, bucketRefreshTokens, "refresh token", r.Hash)
	if err != nil {
		return err
	}
	if err := t.put(bucketRefreshTokens, "refresh token", r.Hash, r.UTC()); err != nil {
		return err
	}
	var oldIdx []indexEntry
	if exists {
		oldIdx = refreshTokenIndexes(old)
	}
	return t.reindex(oldIdx, refreshTokenIndexes(r))
}

// DeleteRefreshToken removes a refresh token; an absent one is not an error.
func (t *writeTx) DeleteRefreshToken(hash []byte) error {
	if err := t.usable(); err != nil {
		return err
	}
	if err := storage.CheckRefreshTokenHash(hash); err != nil {
		return err
	}
	old, exists, err := get[storage.RefreshToken](&t.readTx, bucketRefreshTokens, "refresh token", hash)
	if err != nil || !exists {
		return err
	}
	if err := t.reindex(refreshTokenIndexes(old), nil); err != nil {
		return err
	}
	return t.del(bucketRefreshTokens, "refresh token", hash)
}

func (t *writeTx) PutBan(b storage.Ban) error {
	if err := t.usable(); err != nil {
		return err
	}
	if err := b.CheckKeys(); err != nil {
		return err
	}
	old, exists, err := get[storage.Ban](&t.readTx, bucketBans, "ban", []byte(b.ID))
	if err != nil {
		return err
	}
	if err := t.put(bucketBans, "ban", []byte(b.ID), b.UTC()); err != nil {
		return err
	}
	var oldIdx []indexEntry
	if exists {
		oldIdx = banIndexes(old)
	}
	return t.reindex(oldIdx, banIndexes(b))
}

func (t *writeTx) AppendAudit(a storage.AuditRecord) error {
	if err := t.usable(); err != nil {
		return err
	}
	if err := a.CheckKeys(); err != nil {
		return err
	}
	b, err := t.bucket(bucketAudit)
	if err != nil {
		return err
	}
	if b.Get([]byte(a.ID)) != nil {
		return fmt.Errorf("storage/bolt: audit record %q: %w", a.ID, storage.ErrAlreadyExists)
	}
	return t.put(bucketAudit, "audit record", []byte(a.ID), a.UTC())
}

// DeleteAuditRecord removes an audit record (sweeping); an absent one is
// not an error.
func (t *writeTx) DeleteAuditRecord(id string) error {
	if err := t.usable(); err != nil {
		return err
	}
	if err := (storage.AuditRecord{ID: id}).CheckKeys(); err != nil {
		return err
	}
	return t.del(bucketAudit, "audit record", []byte(id))
}

func (t *writeTx) PutAPIKey(k storage.APIKey) error {
	if err := t.usable(); err != nil {
		return err
	}
	if err := k.CheckKeys(); err != nil {
		return err
	}
	return t.put(bucketAPIKeys, "api key", []byte(k.ID), k.UTC())
}

func (t *writeTx) PutSigningKey(k storage.SigningKey) error {
	if err := t.usable(); err != nil {
		return err
	}
	if err := k.CheckKeys(); err != nil {
		return err
	}
	return t.put(bucketSigningKeys, "signing key", []byte(k.ID), k.UTC())
}

// DeleteSigningKey removes a signing key; an absent one is not an error.
func (t *writeTx) DeleteSigningKey(id string) error {
	if err := t.usable(); err != nil {
		return err
	}
	return t.del(bucketSigningKeys, "signing key", []byte(id))
}

// Emit encodes the event now, so later changes to the caller's payload do
// not leak into the change.
func (t *writeTx) Emit(e storage.Event) error {
	if err := t.usable(); err != nil {
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
