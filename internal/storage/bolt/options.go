package bolt

import (
	"cmp"
	"fmt"
	"log/slog"
	"time"
)

// Options tune a Store. The zero value is usable: every zero field takes its
// default.
type Options struct {
	// RetainRevisions is how many revisions of the event log are kept.
	// Older changes are deleted, in bounded chunks, by the commits that add
	// new ones; a watcher further behind gets storage.ErrCompacted.
	// Default 100000.
	RetainRevisions int64

	// MaxBatch is the most Update calls grouped into one commit.
	// Default 256.
	MaxBatch int

	// WatchCache is how many recent changes are kept in memory so that
	// watchers following the head do not read the file. Default 1024;
	// negative disables the cache.
	WatchCache int

	// OpenTimeout is how long Open waits for the file lock held by another
	// process. Default 5s.
	OpenTimeout time.Duration

	// Logger receives the writer's warnings (a panicking update function, a
	// failed commit). Default: discard.
	Logger *slog.Logger
}

const (
	defaultRetainRevisions = 100000
	defaultMaxBatch        = 256
	defaultWatchCache      = 1024
	defaultOpenTimeout     = 5 * time.Second
)

// withDefaults fills the zero fields and rejects impossible values.
func (o Options) withDefaults() (Options, error) {
	if o.RetainRevisions < 0 {
		return o, fmt.Errorf("storage/bolt: RetainRevisions %d is negative", o.RetainRevisions)
	}
	if o.MaxBatch < 0 {
		return o, fmt.Errorf("storage/bolt: MaxBatch %d is negative", o.MaxBatch)
	}
	o.RetainRevisions = cmp.Or(o.RetainRevisions, defaultRetainRevisions)
	o.MaxBatch = cmp.Or(o.MaxBatch, defaultMaxBatch)
	o.WatchCache = cmp.Or(o.WatchCache, defaultWatchCache)
	if o.WatchCache < 0 {
		o.WatchCache = 0
	}
	if o.OpenTimeout <= 0 {
		o.OpenTimeout = defaultOpenTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}
