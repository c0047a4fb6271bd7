package storagetest

import (
	"bytes"
	"fmt"
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

// testSessionRefreshTokens checks the index by session that sweeping uses:
// it follows puts, replacements that move a hash to another session, and
// deletes, and never runs into a neighbouring session's tokens.
func testSessionRefreshTokens(t *testing.T, s storage.Store) {
	exp := at(720 * time.Hour)
	tok := func(b byte, session string, gen uint64) storage.RefreshToken {
		// Binary hashes with zero bytes, as in testRefreshTokens.
		return storage.RefreshToken{Hash: append([]byte{0x00, b}, bytes.Repeat([]byte{b}, 30)...), SessionID: session, Generation: gen, ExpireTime: exp}
	}
	// ses_1 and ses_10: one ID is a prefix of the other.
	a0, a1, a2 := tok(0x03, "ses_1", 0), tok(0x01, "ses_1", 1), tok(0x02, "ses_1", 2)
	b0 := tok(0x04, "ses_10", 0)
	update(t, s, func(tx storage.Tx) error {
		for _, r := range []storage.RefreshToken{a0, a1, a2, b0} {
			if err := tx.PutRefreshToken(r); err != nil {
				return err
			}
		}
		return nil
	})
	tokensOf := func(session string) []storage.RefreshToken {
		t.Helper()
		var got []storage.RefreshToken
		view(t, s, func(tx storage.ReadTx) error {
			var err error
			got, err = collect(tx.RefreshTokens(session))
			return err
		})
		return got
	}
	want := func(session string, toks ...storage.RefreshToken) {
		t.Helper()
		sameList(t, "RefreshTokens("+session+")", tokensOf(session), toks, normRefreshToken,
			func(r storage.RefreshToken) string { return fmt.Sprintf("%x", r.Hash) })
	}
	want("ses_1", a1, a2, a0) // hash order, every generation
	want("ses_10", b0)
	want("ses_2")
	want("")

	// Replacing a hash's record with another session moves its entry.
	moved := a2
	moved.SessionID = "ses_10"
	update(t, s, func(tx storage.Tx) error { return tx.PutRefreshToken(moved) })
	want("ses_1", a1, a0)
	want("ses_10", moved, b0)

	// Deleting removes the entry; deleting again is not an error.
	for range 2 {
		update(t, s, func(tx storage.Tx) error {
			if err := tx.DeleteRefreshToken(a1.Hash); err != nil {
				return err
			}
			return tx.DeleteRefreshToken(b0.Hash)
		})
	}
	want("ses_1", a0)
	want("ses_10", moved)

	// Inside an Update the index sees the function's own writes.
	a3 := tok(0x05, "ses_1", 3)
	update(t, s, func(tx storage.Tx) error {
		if err := tx.PutRefreshToken(a3); err != nil {
			return err
		}
		if err := tx.DeleteRefreshToken(a0.Hash); err != nil {
			return err
		}
		got, err := collect(tx.RefreshTokens("ses_1"))
		if err != nil {
			return err
		}
		if len(got) != 1 || !bytes.Equal(got[0].Hash, a3.Hash) {
			t.Errorf("RefreshTokens inside the Update that wrote them: %d tokens, want only generation 3", len(got))
		}
		return nil
	})
	want("ses_1", a3)

	// A token must name its session: the index could not find it otherwise.
	_, err := s.Update(t.Context(), func(tx storage.Tx) error {
		return tx.PutRefreshToken(storage.RefreshToken{Hash: []byte{9, 9, 9}, ExpireTime: exp})
	})
	if err == nil {
		t.Error("PutRefreshToken without a session ID succeeded")
	}
}
