package etcd

import (
	"encoding/hex"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// The write methods of an Update's txn are storage.Writes over the buckets
// below; every write is buffered until commit (update.go).

var _ storage.RecordTx = (*txn)(nil)

// tableBuckets and indexBuckets are where each storage.Table and
// storage.Index lives (keys.go).
var (
	tableBuckets = [...]string{
		storage.TableSessions:      bucketSessions,
		storage.TableRefreshTokens: bucketRefreshTokens,
		storage.TableBans:          bucketBans,
		storage.TableAuditRecords:  bucketAudit,
		storage.TableAPIKeys:       bucketAPIKeys,
		storage.TableSigningKeys:   bucketSigningKeys,
		storage.TableIssuers:       bucketIssuers,

		storage.TableExternalRevocations: bucketExternalRevocations,
		storage.TableSignalStreams:       bucketSignalStreams,
		storage.TableSignalTransmitters:  bucketSignalTransmitters,
		storage.TableReceivedSETs:        bucketReceivedSETs,
	}
	indexBuckets = [...]string{
		storage.IndexSessionsByTenant:       bucketSessionsByTenant,
		storage.IndexSessionsByUser:         bucketSessionsByUser,
		storage.IndexSessionsByDevice:       bucketSessionsByDevice,
		storage.IndexRefreshTokensBySession: bucketRefreshBySession,
		storage.IndexBansByTenant:           bucketBansByTenant,
		storage.IndexBansBySubject:          bucketBansBySubject,
		storage.IndexAuditBySubject:         bucketAuditBySubject,
		storage.IndexAuditByActor:           bucketAuditByActor,
	}
)

// recordKey is the key of a record: refresh tokens by the hex of their
// hash; issuers, external revocations and the records of shared signals
// by the hex of their key, which may hold "/" or NUL bytes (a URL, a
// transmitter's jti; hex keeps the keys' byte order).
func (t *txn) recordKey(tb storage.Table, id string) string {
	switch tb {
	case storage.TableRefreshTokens:
		return t.k.refresh([]byte(id))
	case storage.TableIssuers, storage.TableExternalRevocations,
		storage.TableSignalStreams, storage.TableSignalTransmitters, storage.TableReceivedSETs:
		return t.k.record(tableBuckets[tb], hex.EncodeToString([]byte(id)))
	}
	return t.k.record(tableBuckets[tb], id)
}

// indexKey is the key of an index entry: a refresh token's by the hex of
// its hash.
func (t *txn) indexKey(e storage.IndexEntry) string {
	id := e.ID
	if e.Index == storage.IndexRefreshTokensBySession {
		id = hex.EncodeToString([]byte(id))
	}
	return t.k.bucket(indexBuckets[e.Index]) + e.Prefix + id
}

// Writable refuses writes in a View (whose txn is a ReadTx only) and after
// the function returned.
func (t *txn) Writable() error {
	if !t.writable {
		return errReadOnly
	}
	return t.usable()
}

// ReadRecord reads through getForWrite when forWrite: a record about to
// be replaced costs no round trip on the first attempt when it is new.
// A delete reads for real (it needs the record's index entries).
func (t *txn) ReadRecord(tb storage.Table, id string, forWrite bool, rec any) (bool, error) {
	bucket, key := tableBuckets[tb], t.recordKey(tb, id)
	get := t.get
	if forWrite {
		get = t.getForWrite
	}
	raw, exists, err := get(bucket, key)
	if err != nil || !exists || rec == nil {
		return exists, err
	}
	return true, decodeInto(nil, tb.String(), key, raw, rec)
}

func (t *txn) PutRecord(tb storage.Table, id string, val []byte) error {
	t.writes[t.recordKey(tb, id)] = pending{val: val}
	return nil
}

func (t *txn) DeleteRecord(tb storage.Table, id string) error {
	t.del(tableBuckets[tb], t.recordKey(tb, id))
	return nil
}

func (t *txn) PutIndex(e storage.IndexEntry) error {
	t.writes[t.indexKey(e)] = pending{val: []byte{}}
	return nil
}

func (t *txn) DeleteIndex(e storage.IndexEntry) error {
	t.del(indexBuckets[e.Index], t.indexKey(e))
	return nil
}

// del buffers a delete. A delete also rewrites the bucket's guard key: a
// range read cannot see a key vanish, so transactions that iterated over
// the bucket compare the guard instead.
func (t *txn) del(bucket, key string) {
	t.writes[key] = pending{del: true}
	t.guards[bucket] = true
}
