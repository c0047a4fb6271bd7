package bolt

import (
	"encoding/binary"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// migrate upgrades a file of an earlier schema version to schemaVersion in
// one bbolt transaction, before initSchema checks it; a fresh file, or one
// already current (or from a newer build, which initSchema refuses), is left
// alone.
//
// Version 1 -> 2 adds bucketRefreshTokensBySession and indexes every
// existing refresh token, so that sweeping finds the tokens written before
// the upgrade too. It reads every refresh token once: one pass at the first
// Open of the new build, proportional to the file.
func migrate(db *bbolt.DB) error {
	return db.Update(func(tx *bbolt.Tx) error {
		mb := tx.Bucket(bucketMeta)
		if mb == nil {
			return nil // fresh or foreign: initSchema decides
		}
		v, err := parseUint64(mb.Get(metaSchemaVersion))
		if err != nil || v != 1 {
			return nil // initSchema reports it
		}
		idx, err := tx.CreateBucketIfNotExists(bucketRefreshTokensBySession)
		if err != nil {
			return fmt.Errorf("storage/bolt: migrate to schema 2: %w", err)
		}
		tokens := tx.Bucket(bucketRefreshTokens)
		if tokens == nil {
			return fmt.Errorf("%w: bucket %s is missing", errCorrupt, bucketRefreshTokens)
		}
		err = tokens.ForEach(func(_, v []byte) error {
			r, err := decode[storage.RefreshToken]("refresh token", v)
			if err != nil {
				return err
			}
			for _, e := range refreshTokenIndexes(r) {
				if err := idx.Put(e.key, nil); err != nil {
					return fmt.Errorf("storage/bolt: migrate to schema 2: %w", err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		return mb.Put(metaSchemaVersion, binary.BigEndian.AppendUint64(nil, 2))
	})
}
