package bolt_test

import (
	"encoding/binary"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
)

// A schema-1 file (no refresh-token index) is upgraded by Open: the tokens
// written before the upgrade are found by session, and the file checks.
func TestOpenMigratesSchema1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	mustUpdate(t, s, func(tx storage.Tx) error {
		for i, id := range []string{"ses_a", "ses_a", "ses_b"} {
			if err := tx.PutRefreshToken(storage.RefreshToken{Hash: []byte{byte(i), 0, 7}, SessionID: id, Generation: uint64(i), ExpireTime: exp}); err != nil {
				return err
			}
		}
		return nil
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Make it the file the previous build wrote.
	rawUpdate(t, path, func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket(bolt.BucketRefreshTokensBySession); err != nil {
			return err
		}
		return tx.Bucket(bolt.BucketMeta).Put(bolt.MetaSchemaVersion, binary.BigEndian.AppendUint64(nil, 1))
	})
	if err := bolt.Check(path); err == nil {
		t.Fatal("Check accepted a schema-1 file")
	}

	s, err = bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatalf("Open of a schema-1 file: %v", err)
	}
	var gens []uint64
	err = s.View(t.Context(), func(tx storage.ReadTx) error {
		for r, err := range tx.RefreshTokens("ses_a") {
			if err != nil {
				return err
			}
			gens = append(gens, r.Generation)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gens, []uint64{0, 1}) {
		t.Errorf("after migration ses_a's tokens have generations %v, want [0 1]", gens)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bolt.Check(path); err != nil {
		t.Errorf("Check after migration: %v", err)
	}
}
