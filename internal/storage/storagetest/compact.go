package storagetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// testCompact: after Compact(r), Watch before r fails with ErrCompacted and
// Watch from r on still delivers everything later.
func testCompact(t *testing.T, s storage.Store) {
	want := writeChanges(t, s, 6)
	cut := want[2].Revision
	if err := s.Compact(t.Context(), cut); err != nil {
		t.Fatalf("Compact(%d): %v", cut, err)
	}
	for _, after := range []int64{0, want[0].Revision, want[1].Revision, cut - 1} {
		if _, err := s.Watch(t.Context(), after); !errors.Is(err, storage.ErrCompacted) {
			t.Errorf("Watch(%d) after Compact(%d): got %v, want ErrCompacted", after, cut, err)
		}
	}
	w := watch(t, s, cut)
	for _, c := range want[3:] {
		same(t, fmt.Sprintf("change %d after compaction", c.Revision), next(t, w), c, normChange)
	}
	// Compacting again to the same revision changes nothing.
	if err := s.Compact(t.Context(), cut); err != nil {
		t.Errorf("Compact(%d) again: %v", cut, err)
	}
	w = watch(t, s, want[4].Revision)
	same(t, "last change after compacting twice", next(t, w), want[5], normChange)
	// Records are not part of the log: compaction keeps them.
	view(t, s, func(tx storage.ReadTx) error {
		_, err := tx.Ban("ban_000")
		if err != nil {
			t.Errorf("Ban after Compact: %v", err)
		}
		return nil
	})
}
