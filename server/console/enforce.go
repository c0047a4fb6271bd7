package console

import (
	"context"
	"fmt"
	"sync"

	"github.com/portcullis-dev/portcullis/internal/authority"
)

// invalidf is bad input found by the console itself.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{authority.ErrInvalidArgument}, args...)...)
}

// banRevisions remembers the revision of the bans created through this
// console (bounded: past max the oldest half is forgotten). A ban record
// does not hold the revision that created it; for any other ban the
// console counts the mirrors that have applied the revision it read the
// ban at, which is at or after the ban's: a mirror counted enforces the
// ban, and one not counted may (it is shown behind, never ahead).
type banRevisions struct {
	mu    sync.Mutex
	max   int
	order []string
	rev   map[string]int64
}

func newBanRevisions(max int) *banRevisions {
	return &banRevisions{max: max, rev: map[string]int64{}}
}

func (b *banRevisions) put(id string, rev int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.order) >= b.max {
		for _, old := range b.order[:b.max/2] {
			delete(b.rev, old)
		}
		b.order = append([]string(nil), b.order[b.max/2:]...)
	}
	b.order = append(b.order, id)
	b.rev[id] = rev
}

func (b *banRevisions) get(id string) (int64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.rev[id]
	return r, ok
}

// mirrorState is one mirror in a ban's rollout picture.
type mirrorState struct {
	Name    string
	Applied int64
	Has     bool
}

// enforcement is how many mirrors enforce a ban.
type enforcement struct {
	Confirmed, Total int
	Text             string
	Mirrors          []mirrorState // this replica's reporting mirrors
}

// enforcement counts the reporting mirrors (of this replica, and of the
// others by their published summaries) that have applied the ban's
// revision; readRev stands for it when the console did not create the
// ban (see banRevisions).
func (c *Console) enforcement(ctx context.Context, banID string, readRev int64) enforcement {
	rev, ok := c.revs.get(banID)
	if !ok {
		rev = readRev
	}
	e := c.cfg.Fleet.Wait(ctx, rev, 0) // a zero wait only counts
	out := enforcement{Confirmed: e.Confirmed, Total: e.Total}
	for _, p := range e.Replicas {
		if !p.Gone {
			out.Confirmed += p.Confirmed
			out.Total += p.Total
		}
	}
	for _, s := range c.cfg.Fleet.Reporting() {
		name := s.Caller
		if s.Identity != nil && s.Identity.Service != "" {
			name = s.Identity.Service + "/" + s.Identity.InstanceID
		}
		out.Mirrors = append(out.Mirrors, mirrorState{Name: name, Applied: s.Applied(), Has: s.Applied() >= rev})
	}
	out.Text = fmt.Sprintf("enforced by %d/%d mirrors", out.Confirmed, out.Total)
	return out
}
