package fleet

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config tunes a Fleet. ProgressTimeout and LoadTimeout must be positive.
type Config struct {
	// ProgressTimeout is how long a reporting subscriber may go without a
	// report before Deadline ends it.
	ProgressTimeout time.Duration
	// LoadTimeout replaces ProgressTimeout while a subscriber loads its
	// snapshot (see Deadline).
	LoadTimeout time.Duration
	// Logger receives the warnings of the presence goroutines (default
	// slog.Default()).
	Logger *slog.Logger
}

// Fleet is one replica's registry of Watch subscribers and its view of the
// other replicas of a shared store.
type Fleet struct {
	cfg       Config
	subs      registry
	view      view
	replicaID string // set by Join
}

// New returns an empty Fleet.
func New(cfg Config) *Fleet {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Fleet{cfg: cfg}
}

// ReplicaID is this replica's ID among the replicas of a shared store, ""
// when it has not joined any (Join).
func (f *Fleet) ReplicaID() string { return f.replicaID }

// Errors of Deadline; the server maps them to statuses.
var (
	ErrNoProgress  = errors.New("subscriber sent no progress report within the progress timeout; reconnect and resume from your last revision")
	ErrLoadTimeout = errors.New("subscriber neither acknowledged its snapshot nor reported within the load timeout; reconnect")
)

// Deadline returns the error that ends the stream of a reporting
// subscriber silent too long at now (wall clock): longer than the progress
// timeout, or, while it loads its snapshot, than the load timeout. A
// mirror that needs longer than the progress timeout to load a large
// snapshot (a busy node, a throttled container, a GC pause) must not be
// cut, or it reconnects, gets another snapshot, and never syncs; but one
// that never acknowledges (its reports go to another replica, it is
// wedged) must not stay waited for forever. Any report restarts the clock
// (the Go mirror sends one every second while it loads).
func (f *Fleet) Deadline(s *Subscriber, now time.Time) error {
	if !s.Reporting() {
		return nil
	}
	silent := now.Sub(s.lastHeard())
	if rev := s.Loading(); rev != 0 {
		if silent > f.cfg.LoadTimeout {
			what := "its snapshot still being built"
			if rev != LoadingUnknown {
				what = fmt.Sprintf("snapshot at revision %d", rev)
			}
			return fmt.Errorf("%w (%s, silent for %s)", ErrLoadTimeout, what, silent.Round(time.Millisecond))
		}
		return nil
	}
	if silent > f.cfg.ProgressTimeout {
		return ErrNoProgress
	}
	return nil
}
