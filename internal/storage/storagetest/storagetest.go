package storagetest

import (
	"context"
	"errors"
	"iter"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// RunTests runs the conformance suite. newStore returns a fresh, empty store
// for one subtest; the backend's helper closes (and checks) it when that
// subtest ends. The suite may close a store itself.
func RunTests(t *testing.T, newStore func(t *testing.T) storage.Store) {
	t.Run("Sessions", func(t *testing.T) { testSessions(t, newStore) })
	t.Run("RefreshTokens", func(t *testing.T) { testRefreshTokens(t, newStore(t)) })
	t.Run("SessionRefreshTokens", func(t *testing.T) { testSessionRefreshTokens(t, newStore(t)) })
	t.Run("Bans", func(t *testing.T) { testBans(t, newStore) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, newStore) })
	t.Run("AuditSweep", func(t *testing.T) { testAuditSweep(t, newStore) })
	t.Run("APIKeys", func(t *testing.T) { testAPIKeys(t, newStore(t)) })
	t.Run("SigningKeys", func(t *testing.T) { testSigningKeys(t, newStore(t)) })
	t.Run("Issuers", func(t *testing.T) { testIssuers(t, newStore) })
	t.Run("ExternalRevocations", func(t *testing.T) { testExternalRevocations(t, newStore) })
	t.Run("SignalStreams", func(t *testing.T) { testSignalStreams(t, newStore(t)) })
	t.Run("SignalTransmitters", func(t *testing.T) { testSignalTransmitters(t, newStore(t)) })
	t.Run("ReceivedSETs", func(t *testing.T) { testReceivedSETs(t, newStore(t)) })
	t.Run("SignalEvents", func(t *testing.T) { testSignalEvents(t, newStore(t)) })
	t.Run("TimeRoundTrip", func(t *testing.T) { testTimeRoundTrip(t, newStore(t)) })
	t.Run("NotFound", func(t *testing.T) { testNotFound(t, newStore(t)) })
	t.Run("Update", func(t *testing.T) { testUpdate(t, newStore) })
	t.Run("Watch", func(t *testing.T) { testWatch(t, newStore) })
	t.Run("Compact", func(t *testing.T) { testCompact(t, newStore(t)) })
	t.Run("Close", func(t *testing.T) { testClose(t, newStore(t)) })
}

// waitLimit bounds every wait of the suite, so that a backend that never
// delivers fails the test instead of hanging it.
const waitLimit = 10 * time.Second

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// update runs fn, failing the test on error. fn must be idempotent: the
// backend may run it more than once.
func update(t *testing.T, s storage.Store, fn func(storage.Tx) error) int64 {
	t.Helper()
	rev, err := s.Update(t.Context(), fn)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	return rev
}

func view(t *testing.T, s storage.Store, fn func(storage.ReadTx) error) {
	t.Helper()
	if err := s.View(t.Context(), fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

// currentRevision is the revision View reports.
func currentRevision(t *testing.T, s storage.Store) int64 {
	t.Helper()
	var rev int64
	view(t, s, func(tx storage.ReadTx) error {
		rev = tx.Revision()
		return nil
	})
	return rev
}

// collect drains seq, stopping at the first error.
func collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	var out []T
	for v, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}

// take reads at most n values of seq and then stops the iterator, which
// must respect that.
func take[T any](seq iter.Seq2[T, error], n int) ([]T, error) {
	var out []T
	if n == 0 {
		return nil, nil
	}
	for v, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, v)
		if len(out) == n {
			break
		}
	}
	return out, nil
}

// wantNotFound fails unless err is storage.ErrNotFound.
func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("%s: got error %v, want ErrNotFound", what, err)
	}
}

// pages reads a query page by page, size records a page, each page resuming
// after the last ID of the previous one, and returns all it read. A page
// that does not move past its After fails the test (instead of looping
// forever on a backend that ignores After).
func pages[T any](t *testing.T, s storage.Store, size int, query func(tx storage.ReadTx, after string) iter.Seq2[T, error], id func(T) string) []T {
	t.Helper()
	var all []T
	after := ""
	for {
		var page []T
		view(t, s, func(tx storage.ReadTx) error {
			var err error
			page, err = take(query(tx, after), size)
			return err
		})
		for _, v := range page {
			if id(v) <= after {
				t.Fatalf("page after %q returned %q", after, id(v))
			}
			after = id(v)
		}
		all = append(all, page...)
		if len(page) < size {
			return all
		}
	}
}
