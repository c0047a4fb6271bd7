package storagetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

func testRefreshTokens(t *testing.T, s storage.Store) {
	// Hashes are binary: a zero byte and high bytes must survive.
	h1 := append([]byte{0x00, 0xff, 0x10}, bytes.Repeat([]byte{0xab}, 29)...)
	h2 := append([]byte{0x00, 0xff, 0x11}, bytes.Repeat([]byte{0xcd}, 29)...)
	tok1 := storage.RefreshToken{Hash: h1, SessionID: "ses_01", Generation: 1, ExpireTime: at(720 * time.Hour)}
	tok2 := storage.RefreshToken{Hash: h2, SessionID: "ses_01", Generation: 2, ExpireTime: at(720 * time.Hour)}
	update(t, s, func(tx storage.Tx) error {
		if err := tx.PutRefreshToken(tok1); err != nil {
			return err
		}
		return tx.PutRefreshToken(tok2)
	})
	get := func(hash []byte) (storage.RefreshToken, error) {
		var tok storage.RefreshToken
		err := s.View(t.Context(), func(tx storage.ReadTx) error {
			var err error
			tok, err = tx.RefreshToken(hash)
			return err
		})
		return tok, err
	}
	for _, want := range []storage.RefreshToken{tok1, tok2} {
		got, err := get(want.Hash)
		if err != nil {
			t.Fatalf("RefreshToken(%x): %v", want.Hash, err)
		}
		same(t, "RefreshToken", got, want, normRefreshToken)
	}

	// Replace: the same hash now points at a later generation.
	tok1b := tok1
	tok1b.Generation = 5
	update(t, s, func(tx storage.Tx) error { return tx.PutRefreshToken(tok1b) })
	got, err := get(h1)
	if err != nil {
		t.Fatalf("RefreshToken after replace: %v", err)
	}
	same(t, "replaced RefreshToken", got, tok1b, normRefreshToken)

	update(t, s, func(tx storage.Tx) error { return tx.DeleteRefreshToken(h1) })
	_, err = get(h1)
	wantNotFound(t, "RefreshToken after DeleteRefreshToken", err)
	if _, err := get(h2); err != nil {
		t.Errorf("deleting one refresh token affected another: %v", err)
	}
	_, err = get(h1[:3])
	wantNotFound(t, "RefreshToken(prefix of a hash)", err)
}
