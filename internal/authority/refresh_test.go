package authority_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt/bolttest"
)

// countingStore counts the Updates that reach the store's writer.
type countingStore struct {
	storage.Store
	updates atomic.Int64
}

func (s *countingStore) Update(ctx context.Context, fn func(storage.Tx) error) (int64, error) {
	s.updates.Add(1)
	return s.Store.Update(ctx, fn)
}

func newRefreshAuthority(t testing.TB) (*authority.Authority, *countingStore) {
	t.Helper()
	st := &countingStore{Store: bolttest.Open(t, bolt.Options{})}
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := authority.New(st, authority.Config{Clock: c.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := a.EnsureSigningKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	return a, st
}

// unknownRefreshToken is well formed but was never issued.
func unknownRefreshToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return "pcr_" + base64.RawURLEncoding.EncodeToString(b)
}

// Invalid refresh tokens, malformed or unknown, are refused without a
// write transaction; rotation and theft detection stay as they were.
func TestRefreshInvalidTokenSkipsWriter(t *testing.T) {
	a, st := newRefreshAuthority(t)
	ctx := context.Background()
	tok, err := a.CreateSession(ctx, authority.Actor{Name: "svc"}, authority.SessionInput{UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	valid := tok.RefreshToken
	for name, bad := range map[string]string{
		"unknown":          unknownRefreshToken(),
		"no prefix":        strings.TrimPrefix(valid, "pcr_"),
		"other prefix":     "pcl_" + strings.TrimPrefix(valid, "pcr_"),
		"short":            valid[:len(valid)-1],
		"long":             valid + "A",
		"not base64url":    "pcr_" + strings.Repeat("!", 43),
		"padded":           "pcr_" + strings.Repeat("A", 42) + "=",
		"non-canonical":    "pcr_" + strings.Repeat("A", 42) + "B", // last char's low bits set
		"garbage":          "pcr_garbage",
		"oversized":        strings.Repeat("z", 5000),
		"swapped case bit": strings.ToUpper(valid[:5]) + valid[5:],
	} {
		before := st.updates.Load()
		_, err := a.RefreshSession(ctx, authority.Actor{Addr: "192.0.2.1:1"}, bad, "")
		if !errors.Is(err, authority.ErrTokenInvalid) {
			t.Errorf("%s: %v, want ErrTokenInvalid", name, err)
		}
		if n := st.updates.Load() - before; n != 0 {
			t.Errorf("%s: refused after %d write transactions, want none", name, n)
		}
	}

	// A valid token still rotates (one write).
	before := st.updates.Load()
	rotated, err := a.RefreshSession(ctx, authority.Actor{}, valid, "")
	if err != nil {
		t.Fatal(err)
	}
	if n := st.updates.Load() - before; n != 1 {
		t.Errorf("a rotation took %d write transactions, want 1", n)
	}
	// The superseded token is theft: the session is revoked (a write).
	if _, err := a.RefreshSession(ctx, authority.Actor{}, valid, ""); !errors.Is(err, authority.ErrTheftDetected) {
		t.Fatalf("superseded token: %v, want ErrTheftDetected", err)
	}
	s, err := a.GetSession(ctx, tok.Session.ID)
	if err != nil || !s.Revoked() {
		t.Fatalf("session after theft: revoked=%v, %v; want revoked", s.Revoked(), err)
	}
	if _, err := a.RefreshSession(ctx, authority.Actor{}, rotated.RefreshToken, ""); !errors.Is(err, authority.ErrSessionRevoked) {
		t.Errorf("current token of the revoked session: %v, want ErrSessionRevoked", err)
	}
}
