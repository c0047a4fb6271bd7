package authoritytest

import (
	"sync"
	"time"
)

// DefaultStart is when the clock of an Authority started without
// Options.Clock stands: a fixed time, so that tokens, ban expiries and
// audit records are the same in every run.
var DefaultStart = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// Clock is the authority's clock, which the test moves. Give its Now to
// every Mirror that follows the authority (client.MirrorOptions.Clock), so
// that the authority and its mirrors agree on when tokens and bans expire.
type Clock struct {
	mu     sync.Mutex
	now    time.Time     // a stopped clock's time
	wall   bool          // follow time.Now instead of now
	offset time.Duration // what Advance added to a wall clock
}

// NewClock returns a clock that stands at start until Advance moves it.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// WallClock returns a clock that follows time.Now, moved ahead by whatever
// Advance adds: for code under test that reads time.Now itself (a Mirror
// with the default clock, a command run in-process).
func WallClock() *Clock { return &Clock{wall: true} }

// Now is the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wall {
		return time.Now().Add(c.offset)
	}
	return c.now
}

// Advance moves the clock d ahead.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wall {
		c.offset += d
	} else {
		c.now = c.now.Add(d)
	}
}
