package client

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// MirrorOptions configure a Mirror. Zero fields take the defaults.
type MirrorOptions struct {
	// Issuer is the "iss" tokens must carry (default "portcullis", the
	// authority's default).
	Issuer string
	// Audience is the value the "aud" of tokens must hold (default
	// "portcullis", the authority's default; set it to the authority's
	// `serve --audience`).
	Audience string
	// StaleAfter is how long the mirror may go without hearing from the
	// authority (an event or a checkpoint) before checks fail with
	// ErrMirrorStale (default 30s). It must exceed the authority's
	// checkpoint interval (5s by default), or an idle stream goes stale.
	StaleAfter time.Duration
	// FailOpen lets checks proceed on the state the mirror has when it is
	// stale (not before its first snapshot), logging every request it lets
	// through. The default fails closed.
	FailOpen bool
	// Logger receives the mirror's logs (default slog.Default()).
	Logger *slog.Logger
	// Clock is the time checks and staleness are judged by (default
	// time.Now). Tests share one with the authority.
	Clock func() time.Time
	// CacheSize bounds the verified-token cache, in tokens (default
	// 100,000; about 900 bytes each for a 550-byte token and its claims;
	// negative disables the cache).
	CacheSize int
	// OnEvent, when set, is called with every applied event, in order,
	// after the state that includes it is in place, in the goroutine that
	// applies events: it must return quickly.
	OnEvent func(*pb.Event)
	// MinBackoff and MaxBackoff bound the wait between reconnection
	// attempts: it doubles from MinBackoff (default 100ms) up to MaxBackoff
	// (default 10s), with jitter, and starts again from MinBackoff once a
	// stream delivered something.
	MinBackoff, MaxBackoff time.Duration
	// MaxMessageSize bounds a message of the stream (default 256 MiB). The
	// authority sends a snapshot in parts of about 1 MiB, but a change is
	// one message with every event of its write (an IP ban on a busy
	// prefix revokes all the sessions created from it): gRPC's own 4 MiB
	// default would refuse a large one.
	MaxMessageSize int
	// PruneInterval is how often, at most, the mirror drops expired bans,
	// revoked sessions whose tokens have expired and keys past their
	// verify_until (default 10s). Checks compare times regardless: pruning
	// only bounds memory.
	PruneInterval time.Duration
	// Identity names the mirror to the authority; empty fields take
	// the binary's name, hostname-pid and the module version. The mirror sends it when it opens a Watch stream
	// and then reports the revision it has applied (as messages of an
	// EventService.StreamProgress stream) after each snapshot, change and
	// checkpoint, so that the authority can list it and writes with a wait
	// can wait for it.
	Identity MirrorIdentity
	// DisableProgress sends no identity and no progress reports: the
	// authority lists the mirror without one and never waits for it.
	DisableProgress bool

	// beforeApply, set by tests (export_test.go), is called in Run's
	// goroutine with each message of the stream before the mirror applies
	// it; while it blocks, the mirror applies nothing and reports no
	// progress. With it set, the mirror decodes every message whole for
	// the hook to see, rather than reading a snapshot's bans apart with its
	// own codec (snapwire.go). Tests of other packages hold a mirror back
	// with a stream interceptor instead (authoritytest.BeforeWatchMessage).
	beforeApply func(*pb.WatchResponse)
}

// Defaults of MirrorOptions.
const (
	defaultIssuer        = "portcullis"
	defaultAudience      = "portcullis"
	defaultStaleAfter    = 30 * time.Second
	defaultCacheSize     = 100_000
	defaultMinBackoff    = 100 * time.Millisecond
	defaultMaxBackoff    = 10 * time.Second
	defaultPruneInterval = 10 * time.Second
	defaultMaxMessage    = 256 << 20
)

func (o MirrorOptions) withDefaults() MirrorOptions {
	if o.Issuer == "" {
		o.Issuer = defaultIssuer
	}
	if o.Audience == "" {
		o.Audience = defaultAudience
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = defaultStaleAfter
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	switch {
	case o.CacheSize == 0:
		o.CacheSize = defaultCacheSize
	case o.CacheSize < 0:
		o.CacheSize = 0
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = defaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = defaultMaxBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.PruneInterval <= 0 {
		o.PruneInterval = defaultPruneInterval
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = defaultMaxMessage
	}
	if !o.DisableProgress {
		o.Identity = o.Identity.withDefaults()
	}
	return o
}

// Mirror keeps a local copy of what checks need (verification keys, active
// bans, revoked sessions) by following the authority's Watch stream, and
// checks tokens against it without a network call.
//
// Run follows the stream; Check, Track and the accessors may be called
// from any goroutine at any time. The state is an immutable snapshot
// behind an atomic pointer, replaced (copy-on-write) by the one goroutine
// that applies the stream: readers never take a lock.
type Mirror struct {
	events     pb.EventServiceClient
	opts       MirrorOptions
	clock      func() time.Time
	log        *slog.Logger
	staleAfter int64 // ns

	state     atomic.Pointer[state] // nil until the first snapshot
	lastHeard atomic.Int64          // unix ns (mirror clock) of the last message
	cache     *cache
	// Every check reads the fields above; every Track writes tracker's
	// mutex. The padding keeps them off one cache line, so that tracking
	// streams does not slow the checks of other cores.
	_       [128]byte
	tracker tracker

	synced   chan struct{}
	syncOnce sync.Once
	running  atomic.Bool

	stats struct {
		resets, changes, events, checkpoints, connects, prunes, caughtUp atomic.Int64
	}
	writeMu   sync.Mutex    // held by the one writer of state (apply, prune)
	lastPrune int64         // unix ns; under writeMu
	parts     snapshotParts // an unfinished snapshot of the current stream; under writeMu

	progress progress      // progress.go
	checks   checkCounters // checkcounts.go

	// reconnectHook, set by tests before Run (export_test.go), sees each
	// ended stream's error and the wait Run chose before reconnecting.
	reconnectHook func(err error, wait time.Duration)
	// refused, set by StartMirror before Run, is told of an error that no
	// reconnection fixes (a refused API key).
	refused func(error)
}

// NewMirror returns a mirror that follows c's event stream once Run is
// called. c's API key needs the events:watch scope.
func NewMirror(c *Client, opts MirrorOptions) *Mirror {
	opts = opts.withDefaults()
	m := &Mirror{
		opts: opts, clock: opts.Clock, log: opts.Logger, staleAfter: int64(opts.StaleAfter),
		cache: newCache(opts.CacheSize), synced: make(chan struct{}),
	}
	if c != nil {
		m.events = c.Events
	}
	m.tracker.init()
	m.lastHeard.Store(m.clock().UnixNano())
	return m
}

// WaitSynced waits until the mirror has loaded its first snapshot (after
// which checks can succeed), or ctx ends.
func (m *Mirror) WaitSynced(ctx context.Context) error {
	select {
	case <-m.synced:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Revision returns the revision the mirror's state is at (0 before the
// first snapshot).
func (m *Mirror) Revision() int64 {
	if st := m.state.Load(); st != nil {
		return st.rev
	}
	return 0
}

// staleness returns how long ago, by the mirror's clock, it last heard
// from the authority (an event, a snapshot or a checkpoint); before that,
// how long ago it was created.
func (m *Mirror) staleness() time.Duration {
	return time.Duration(m.clock().UnixNano() - m.lastHeard.Load())
}

// MirrorStats are counters and sizes of a mirror, for metrics and tests.
type MirrorStats struct {
	Revision int64
	StoreID  string
	// Resets counts the snapshots applied (the first one included): more
	// than one means the mirror had to start over (a wiped or another
	// store, or a revision no longer retained).
	Resets      int64
	Changes     int64 // changes applied
	Events      int64 // events applied
	Checkpoints int64
	Connects    int64 // Watch streams opened
	Prunes      int64 // prunes that dropped something
	Reports     int64 // progress reports sent on the progress stream (progress.go)
	Bans        int   // bans held (some may have expired since the last prune)
	Revoked     int   // revoked sessions held
	Keys        int   // verification keys held
	Tracked     int   // streams tracked
	Cached      int   // tokens in the cache (counting walks the cache)

	// CaughtUp counts the streams that delivered their caught-up
	// checkpoint: the authority sends one as soon as a stream has
	// delivered everything up to the store's revision at its start (right
	// after a snapshot, or after a resume's missed changes), so once it
	// equals Connects the mirror has caught up on its current stream,
	// without waiting a checkpoint interval.
	CaughtUp int64

	// AuthorityRevision is the latest revision of the authority the mirror
	// has heard of (at least Revision): Revision lags it while the mirror
	// applies.
	AuthorityRevision int64
	// Staleness is how long the mirror has gone without word from the
	// authority (MirrorOptions.StaleAfter bounds it).
	Staleness time.Duration
	// Checks counts the checks answered, by result: "allowed", "stale",
	// "token_invalid", "token_expired", "banned", "session_revoked",
	// "capability_restricted" (every key present).
	Checks map[string]uint64
}

// Stats returns the mirror's counters and sizes.
func (m *Mirror) Stats() MirrorStats {
	s := MirrorStats{
		Resets: m.stats.resets.Load(), Changes: m.stats.changes.Load(), Events: m.stats.events.Load(),
		Checkpoints: m.stats.checkpoints.Load(), Connects: m.stats.connects.Load(), Prunes: m.stats.prunes.Load(),
		Reports: m.progress.reports.Load(),
		Tracked: m.tracker.len(), Cached: m.cache.len(), CaughtUp: m.stats.caughtUp.Load(),
		AuthorityRevision: m.authorityRevision(), Staleness: m.staleness(), Checks: m.checks.load(),
	}
	if st := m.state.Load(); st != nil {
		s.Revision, s.StoreID = st.rev, st.storeID
		s.Bans, s.Revoked, s.Keys = st.nBans, st.revoked.len(), len(st.keys)
	}
	return s
}
