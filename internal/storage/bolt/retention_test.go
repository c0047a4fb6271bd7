package bolt_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt/bolttest"
)

func wantCompacted(t *testing.T, s storage.Store, after int64) {
	t.Helper()
	if _, err := s.Watch(t.Context(), after); !errors.Is(err, storage.ErrCompacted) {
		t.Errorf("Watch(%d): got %v, want ErrCompacted", after, err)
	}
}

func wantWatchFrom(t *testing.T, s storage.Store, after, head int64) {
	t.Helper()
	w, err := s.Watch(t.Context(), after)
	if err != nil {
		t.Fatalf("Watch(%d): %v", after, err)
	}
	defer w.Close()
	for want := after + 1; want <= head; want++ {
		c, err := w.Next(waitCtx(t))
		if err != nil {
			t.Fatalf("Watch(%d): Next: %v", after, err)
		}
		if c.Revision != want {
			t.Fatalf("Watch(%d): got change %d, want %d", after, c.Revision, want)
		}
	}
}

// TestRetention: the log keeps the last RetainRevisions changes; a watcher
// that fell further behind is told so by Next.
func TestRetention(t *testing.T) {
	s := bolttest.Open(t, bolt.Options{RetainRevisions: 10})
	behind, err := s.Watch(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer behind.Close()
	writeBans(t, s, "ban_", 30)
	wantCompacted(t, s, 0)
	wantCompacted(t, s, 19)
	wantWatchFrom(t, s, 20, 30)
	if _, err := behind.Next(waitCtx(t)); !errors.Is(err, storage.ErrCompacted) {
		t.Errorf("Next of a watcher left behind: %v, want ErrCompacted", err)
	}
	// Records are not affected by the log's retention.
	if !hasBan(t, s, "ban_00000") {
		t.Errorf("retention deleted a record")
	}
}

// TestRetentionChunks: lowering the retention on reopen deletes the excess
// a bounded chunk per commit, not all in one transaction.
func TestRetentionChunks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	s := bolttest.OpenPath(t, path, bolt.Options{})
	const n = 2*bolt.RetentionChunk + 100
	var wg sync.WaitGroup
	for g := range 50 {
		wg.Go(func() {
			for i := g; i < n; i += 50 {
				mustUpdate(t, s, putBanEmit(testBan(fmt.Sprintf("ban_%05d", i))))
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = bolttest.OpenPath(t, path, bolt.Options{RetainRevisions: 10})
	wantWatchFrom(t, s, 0, n) // nothing trimmed until a commit
	head := int64(n)
	for chunk := int64(1); chunk <= 3; chunk++ {
		head = mustUpdate(t, s, putBanEmit(testBan(fmt.Sprintf("more_%d", chunk))))
		compacted := min(chunk*bolt.RetentionChunk, head-10)
		wantCompacted(t, s, compacted-1)
		wantWatchFrom(t, s, compacted, head)
	}
}

// TestCompactThenWatcherBehind: an idle watcher overtaken by Compact gets
// ErrCompacted from Next, even though the changes may still be cached.
func TestCompactThenWatcherBehind(t *testing.T) {
	s := bolttest.Open(t, bolt.Options{})
	revs := writeBans(t, s, "ban_", 5)
	w, err := s.Watch(t.Context(), revs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := s.Compact(t.Context(), revs[2]); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Next(waitCtx(t)); !errors.Is(err, storage.ErrCompacted) {
		t.Errorf("Next: %v, want ErrCompacted", err)
	}
	if err := s.Compact(t.Context(), revs[4]+1); !errors.Is(err, storage.ErrFutureRevision) {
		t.Errorf("Compact beyond the head: %v, want ErrFutureRevision", err)
	}
	if err := s.Compact(t.Context(), revs[4]); err != nil {
		t.Errorf("Compact to the head: %v", err)
	}
	wantWatchFrom(t, s, revs[4], revs[4])
}
