package bolt_test

import (
	"errors"
	"iter"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt/bolttest"
)

func TestEmitChecksEvents(t *testing.T) {
	s := bolttest.Open(t, bolt.Options{})
	b := testBan("b")
	key := storage.SigningKey{ID: "kid", PrivateKey: []byte("secret seed"), PublicKey: []byte("pub")}
	ses := storage.Session{ID: "s", TenantID: "t1"}
	for name, e := range map[string]storage.Event{
		"private key":   {Kind: storage.EventKeyAdded, Key: &key},
		"no payload":    {Kind: storage.EventBanCreated},
		"two payloads":  {Kind: storage.EventBanCreated, Ban: &b, Session: &ses},
		"wrong payload": {Kind: storage.EventSessionRevoked, Ban: &b},
	} {
		_, err := s.Update(t.Context(), func(tx storage.Tx) error { return tx.Emit(e) })
		if !errors.Is(err, bolt.ErrInvalid) {
			t.Errorf("Emit with %s: %v, want ErrInvalid", name, err)
		}
	}
	if rev := revision(t, s); rev != 0 {
		t.Errorf("refused events consumed revisions: %d", rev)
	}
}

func TestKeysRefuseSeparator(t *testing.T) {
	s := bolttest.Open(t, bolt.Options{})
	for name, fn := range map[string]func(storage.Tx) error{
		"session tenant": func(tx storage.Tx) error { return tx.PutSession(storage.Session{ID: "s", TenantID: "t\x00x"}) },
		"session user": func(tx storage.Tx) error {
			return tx.PutSession(storage.Session{ID: "s", TenantID: "t", UserID: "u\x00"})
		},
		"session empty ID":  func(tx storage.Tx) error { return tx.PutSession(storage.Session{TenantID: "t"}) },
		"ban value":         func(tx storage.Tx) error { b := testBan("b"); b.Value = "v\x00"; return tx.PutBan(b) },
		"ban empty kind":    func(tx storage.Tx) error { b := testBan("b"); b.Kind = ""; return tx.PutBan(b) },
		"audit empty ID":    func(tx storage.Tx) error { return tx.AppendAudit(storage.AuditRecord{}) },
		"refresh no hash":   func(tx storage.Tx) error { return tx.PutRefreshToken(storage.RefreshToken{SessionID: "s"}) },
		"signing key no ID": func(tx storage.Tx) error { return tx.PutSigningKey(storage.SigningKey{}) },
	} {
		if _, err := s.Update(t.Context(), fn); !errors.Is(err, bolt.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// TestTxAfterFunction: a transaction or iterator kept past its function
// fails cleanly instead of touching a finished bbolt transaction.
func TestTxAfterFunction(t *testing.T) {
	s := bolttest.Open(t, bolt.Options{})
	writeBans(t, s, "ban_", 2)
	var kept storage.Tx
	var seq iter.Seq2[storage.Ban, error]
	mustUpdate(t, s, func(tx storage.Tx) error {
		kept = tx
		seq = tx.Bans(storage.BanQuery{})
		return nil
	})
	if _, err := kept.Ban("ban_00000"); !errors.Is(err, bolt.ErrTxDone) {
		t.Errorf("Ban on a finished Tx: %v", err)
	}
	if err := kept.PutBan(testBan("late")); !errors.Is(err, bolt.ErrTxDone) {
		t.Errorf("PutBan on a finished Tx: %v", err)
	}
	for _, err := range seq {
		if !errors.Is(err, bolt.ErrTxDone) {
			t.Errorf("iterator of a finished Tx: %v", err)
		}
	}
	var readKept storage.ReadTx
	if err := s.View(t.Context(), func(tx storage.ReadTx) error { readKept = tx; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := readKept.Ban("ban_00000"); !errors.Is(err, bolt.ErrTxDone) {
		t.Errorf("Ban on a finished ReadTx: %v", err)
	}
}

func TestDeleteAbsentIsNoop(t *testing.T) {
	s := bolttest.Open(t, bolt.Options{})
	mustUpdate(t, s, func(tx storage.Tx) error {
		if err := tx.DeleteSession("nope"); err != nil {
			return err
		}
		if err := tx.DeleteRefreshToken([]byte("nope")); err != nil {
			return err
		}
		return tx.DeleteSigningKey("nope")
	})
}
