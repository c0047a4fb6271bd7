package authority

import (
	"testing"
	"time"
)

func TestIDsAreMonotonic(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := newID("x_", base)
	for i := range 1000 {
		// The same millisecond, then a clock that steps back.
		now := base
		if i > 500 {
			now = base.Add(-time.Second)
		}
		id := newID("x_", now)
		if id <= prev {
			t.Fatalf("ID %d: %s after %s", i, id, prev)
		}
		prev = id
	}
	if later := newID("x_", base.Add(time.Millisecond)); later <= prev {
		t.Fatalf("a later millisecond gave %s after %s", later, prev)
	}
}
