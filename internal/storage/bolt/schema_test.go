package bolt_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt/bolttest"
)

// rawUpdate edits a closed store's file directly, bypassing the Store.
func rawUpdate(t *testing.T, path string, fn func(*bbolt.Tx) error) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// copyStore makes a store with one session, closes it, and returns a copy
// of its file to damage (the original must stay consistent: bolttest checks
// it).
func copyStore(t *testing.T) string {
	t.Helper()
	s := bolttest.Open(t, bolt.Options{})
	mustUpdate(t, s, func(tx storage.Tx) error {
		return tx.PutSession(storage.Session{ID: "ses_1", TenantID: "t1", UserID: "alice", CreateTime: base})
	})
	mustUpdate(t, s, putBanEmit(testBan("ban_1")))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "copy.db")
	in, err := os.Open(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = in.Close() }()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// A file of any other schema version is refused, an older one included:
// before 1.0 there is no migration. The file is left as it was.
func TestOpenRefusesOtherSchemaVersions(t *testing.T) {
	for _, v := range []uint64{1, 3, 4, 99} {
		path := copyStore(t)
		rawUpdate(t, path, func(tx *bbolt.Tx) error {
			return tx.Bucket(bolt.BucketMeta).Put(bolt.MetaSchemaVersion, binary.BigEndian.AppendUint64(nil, v))
		})
		_, err := bolt.Open(path, bolt.Options{})
		if want := fmt.Sprintf("unsupported schema version %d", v); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open of a version-%d file: %v, want an error containing %q", v, err, want)
		}
		rawUpdate(t, path, func(tx *bbolt.Tx) error {
			if got := binary.BigEndian.Uint64(tx.Bucket(bolt.BucketMeta).Get(bolt.MetaSchemaVersion)); got != v {
				t.Errorf("the refused file now says version %d, want %d", got, v)
			}
			return nil
		})
	}
}

func TestOpenRefusesForeignFiles(t *testing.T) {
	dir := t.TempDir()
	foreign := filepath.Join(dir, "foreign.db")
	rawUpdate(t, foreign, func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucket([]byte("something_else"))
		return err
	})
	if _, err := bolt.Open(foreign, bolt.Options{}); err == nil || !strings.Contains(err.Error(), "not a Portcullis store") {
		t.Errorf("Open of another application's bbolt file: %v", err)
	}

	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := bolt.Open(garbage, bolt.Options{}); err == nil {
		t.Errorf("Open of a garbage file succeeded")
	}

	if _, err := bolt.Open(filepath.Join(dir, "missing", "p.db"), bolt.Options{}); err == nil {
		t.Errorf("Open in a missing directory succeeded")
	}
	if _, err := bolt.Open(filepath.Join(dir, "p.db"), bolt.Options{RetainRevisions: -1}); err == nil {
		t.Errorf("Open with a negative retention succeeded")
	}
}

func TestCheckFindsBrokenIndexes(t *testing.T) {
	t.Run("Intact", func(t *testing.T) {
		if err := bolt.Check(copyStore(t)); err != nil {
			t.Errorf("Check of an intact store: %v", err)
		}
	})
	t.Run("MissingEntry", func(t *testing.T) {
		path := copyStore(t)
		rawUpdate(t, path, func(tx *bbolt.Tx) error {
			return tx.Bucket(bolt.BucketSessionsByUser).Delete(bolt.IndexKey("ses_1", "t1", "alice"))
		})
		if err := bolt.Check(path); !errors.Is(err, bolt.ErrCorrupt) {
			t.Errorf("Check with a missing index entry: %v", err)
		}
	})
	t.Run("StrayEntry", func(t *testing.T) {
		path := copyStore(t)
		rawUpdate(t, path, func(tx *bbolt.Tx) error {
			return tx.Bucket(bolt.BucketSessionsByUser).Put(bolt.IndexKey("ses_2", "t1", "alice"), nil)
		})
		if err := bolt.Check(path); !errors.Is(err, bolt.ErrCorrupt) {
			t.Errorf("Check with a stray index entry: %v", err)
		}
	})
	t.Run("EventGap", func(t *testing.T) {
		path := copyStore(t)
		rawUpdate(t, path, func(tx *bbolt.Tx) error {
			return tx.Bucket([]byte("events")).Delete(binary.BigEndian.AppendUint64(nil, 1))
		})
		if err := bolt.Check(path); !errors.Is(err, bolt.ErrCorrupt) {
			t.Errorf("Check with a missing change: %v", err)
		}
	})
}
