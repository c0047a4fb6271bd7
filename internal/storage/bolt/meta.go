package bolt

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
)

// errCorrupt marks a file whose content breaks the schema's invariants.
var errCorrupt = errors.New("storage/bolt: corrupt store")

// meta is the content of bucketMeta.
type meta struct {
	storeID   string
	revision  int64 // of the last change
	compacted int64 // events up to here are deleted
}

// readMeta reads and validates bucketMeta.
func readMeta(tx *bbolt.Tx) (meta, error) {
	b := tx.Bucket(bucketMeta)
	if b == nil {
		return meta{}, fmt.Errorf("%w: no %s bucket", errCorrupt, bucketMeta)
	}
	if err := checkSchemaVersion(b); err != nil {
		return meta{}, err
	}
	var m meta
	m.storeID = string(b.Get(metaStoreID))
	if len(m.storeID) != 32 {
		return meta{}, fmt.Errorf("%w: store_id %q is not 32 hex digits", errCorrupt, m.storeID)
	}
	var err error
	if m.revision, err = parseRev(b.Get(metaRevision)); err != nil {
		return meta{}, fmt.Errorf("%w: meta revision: %w", errCorrupt, err)
	}
	if m.compacted, err = parseRev(b.Get(metaCompacted)); err != nil {
		return meta{}, fmt.Errorf("%w: meta compacted: %w", errCorrupt, err)
	}
	if m.compacted > m.revision {
		return meta{}, fmt.Errorf("%w: compacted revision %d is after revision %d", errCorrupt, m.compacted, m.revision)
	}
	return m, nil
}

// readCounters reads only the two counters: the writer and the watchers do
// it in every transaction, so it skips the checks Open already made.
func readCounters(tx *bbolt.Tx) (revision, compacted int64, err error) {
	b := tx.Bucket(bucketMeta)
	if b == nil {
		return 0, 0, fmt.Errorf("%w: no %s bucket", errCorrupt, bucketMeta)
	}
	if revision, err = parseRev(b.Get(metaRevision)); err != nil {
		return 0, 0, fmt.Errorf("%w: meta revision: %w", errCorrupt, err)
	}
	if compacted, err = parseRev(b.Get(metaCompacted)); err != nil {
		return 0, 0, fmt.Errorf("%w: meta compacted: %w", errCorrupt, err)
	}
	return revision, compacted, nil
}

func checkSchemaVersion(b *bbolt.Bucket) error {
	v, err := parseUint64(b.Get(metaSchemaVersion))
	if err != nil {
		return fmt.Errorf("%w: schema version: %w", errCorrupt, err)
	}
	if v != schemaVersion {
		return fmt.Errorf("storage/bolt: unsupported schema version %d (this build reads version %d)", v, schemaVersion)
	}
	return nil
}

// putCounter writes an 8-byte big-endian meta counter.
func putCounter(tx *bbolt.Tx, key []byte, v int64) error {
	b := tx.Bucket(bucketMeta)
	if b == nil {
		return fmt.Errorf("%w: no %s bucket", errCorrupt, bucketMeta)
	}
	if err := b.Put(key, revKey(v)); err != nil {
		return fmt.Errorf("storage/bolt: write meta %s: %w", key, err)
	}
	return nil
}

// initSchema makes an empty file a store (every bucket, a fresh store_id,
// revision 0) and checks that a non-empty one is a store of this schema.
func initSchema(db *bbolt.DB) (meta, error) {
	var m meta
	fresh := false
	err := db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			empty := true
			err := tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
				empty = false
				return nil
			})
			if err != nil {
				return err
			}
			if !empty {
				return errors.New("storage/bolt: the file is a bbolt database but not a Portcullis store (no meta bucket)")
			}
			fresh = true
			return nil
		}
		var err error
		if m, err = readMeta(tx); err != nil {
			return err
		}
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("%w: bucket %s is missing", errCorrupt, name)
			}
		}
		return nil
	})
	if err != nil || !fresh {
		return m, err
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return meta{}, fmt.Errorf("storage/bolt: store id: %w", err)
	}
	m = meta{storeID: hex.EncodeToString(id[:])}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucket(name); err != nil {
				return fmt.Errorf("storage/bolt: create bucket %s: %w", name, err)
			}
		}
		b := tx.Bucket(bucketMeta)
		for _, kv := range []struct{ k, v []byte }{
			{metaSchemaVersion, binary.BigEndian.AppendUint64(nil, schemaVersion)},
			{metaStoreID, []byte(m.storeID)},
			{metaRevision, revKey(0)},
			{metaCompacted, revKey(0)},
		} {
			if err := b.Put(kv.k, kv.v); err != nil {
				return fmt.Errorf("storage/bolt: write meta %s: %w", kv.k, err)
			}
		}
		return nil
	})
	return m, err
}
