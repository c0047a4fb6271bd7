package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd/etcdtest"
)

// logRecords keeps the level and message of every record logged through it.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecords) WithGroup(string) slog.Handler      { return h }

// TestTxnTooLargeLogsAtDebug runs an Update beyond a real etcd's
// --max-txn-ops: the store returns storage.ErrTxnTooLarge, which callers
// answer by splitting their work, so the etcd client's own log of the
// refused call must not reach the operator as a warning. It proves what the
// unit test of the log core assumes: that the client logs the refusal with
// the error value in a zap error field.
func TestTxnTooLargeLogsAtDebug(t *testing.T) {
	m := etcdtest.Start(t, etcdtest.Config{MaxTxnOps: 16})
	h := &logRecords{}
	// The handler takes every level, so a lowered record is seen too.
	s := etcdtest.Open(t, etcd.Options{Logger: slog.New(h)}, m)
	_, err := s.Update(t.Context(), func(tx storage.Tx) error {
		for i := range 40 {
			if err := tx.PutAPIKey(storage.APIKey{ID: fmt.Sprintf("key_%03d", i), Name: "k"}); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, storage.ErrTxnTooLarge) {
		t.Fatalf("Update of 40 keys under --max-txn-ops 16: %v, want ErrTxnTooLarge", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	lowered := 0
	for _, r := range h.recs {
		if r.Level >= slog.LevelWarn {
			t.Errorf("logged at %v: %q", r.Level, r.Message)
		}
		if r.Level == slog.LevelDebug {
			lowered++
		}
	}
	if lowered == 0 {
		t.Errorf("no record of the refused transaction at debug; records: %d", len(h.recs))
	}
}
