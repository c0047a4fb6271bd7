package bolt

import (
	"fmt"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// writeTx is one update function's view of the writer's bbolt transaction.
// Several writeTx share one bbolt transaction in a group commit; each keeps
// its own events. The write methods are storage.Writes, over the buckets
// below.
type writeTx struct {
	readTx
	storage.Writes
}

var (
	_ storage.Tx       = (*writeTx)(nil)
	_ storage.RecordTx = (*writeTx)(nil)
)

func newWriteTx(rt readTx) *writeTx {
	t := &writeTx{readTx: rt}
	t.Writes = storage.NewWrites(t)
	return t
}

// tableBuckets and indexBuckets are where each storage.Table and
// storage.Index lives (schema.go).
var (
	tableBuckets = [...][]byte{
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
	indexBuckets = [...][]byte{
		storage.IndexSessionsByTenant:       bucketSessionsByTenant,
		storage.IndexSessionsByUser:         bucketSessionsByUser,
		storage.IndexSessionsByDevice:       bucketSessionsByDevice,
		storage.IndexRefreshTokensBySession: bucketRefreshTokensBySession,
		storage.IndexBansByTenant:           bucketBansByTenant,
		storage.IndexBansBySubject:          bucketBansBySubject,
		storage.IndexAuditBySubject:         bucketAuditBySubject,
		storage.IndexAuditByActor:           bucketAuditByActor,
	}
)

func (t *writeTx) Writable() error { return t.usable() }

func (t *writeTx) PutRecord(tb storage.Table, id string, val []byte) error {
	return t.write(tableBuckets[tb], []byte(id), val, false)
}

func (t *writeTx) DeleteRecord(tb storage.Table, id string) error {
	return t.write(tableBuckets[tb], []byte(id), nil, true)
}

func (t *writeTx) PutIndex(e storage.IndexEntry) error {
	return t.write(indexBuckets[e.Index], []byte(e.Prefix+e.ID), nil, false)
}

func (t *writeTx) DeleteIndex(e storage.IndexEntry) error {
	return t.write(indexBuckets[e.Index], []byte(e.Prefix+e.ID), nil, true)
}

// write puts val under key in bucket, or deletes key when del.
func (t *writeTx) write(bucket, key, val []byte, del bool) error {
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	if del {
		err = b.Delete(key)
	} else {
		err = b.Put(key, val)
	}
	if err != nil {
		return fmt.Errorf("storage/bolt: write %s: %w", bucket, err)
	}
	return nil
}
