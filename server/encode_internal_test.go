package server

import (
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

// A change from the store's ring is built into a message once for every
// subscriber (kept in its Slot) until it is older than changeMaxAge; a
// change read for one watcher alone is built for it.
func TestSharedChange(t *testing.T) {
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	s := &Server{auth: authority.New(nil, authority.Config{Clock: func() time.Time { return now }})}
	r := storage.NewRing(4)
	r.Reset(0)
	r.Append(storage.DecodedEntry(storage.Change{Revision: 1}))
	es, _, _ := r.After(0, nil, 1)
	c, _ := es[0].Change()

	first := s.sharedChange("st", c)
	if again := s.sharedChange("st", c); again != first || first.resp.GetRevision() != 1 {
		t.Fatalf("the same ring change built twice")
	}
	now = now.Add(changeMaxAge)
	fresh := s.sharedChange("st", c)
	if fresh == first || c.Slot().Load() != fresh || s.sharedChange("st", c) != fresh {
		t.Fatal("a change past changeMaxAge not rebuilt once and shared again")
	}
	alone := storage.Change{Revision: 1}
	if s.sharedChange("st", alone) == s.sharedChange("st", alone) {
		t.Fatal("a change of no ring shared")
	}
}
