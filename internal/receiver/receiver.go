package receiver

import (
	"cmp"
	"log/slog"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/ssf"
)

// Defaults of Config.
const (
	DefaultMaxSkew       = 5 * time.Minute
	DefaultPushMaxAge    = time.Hour
	DefaultPollMaxAge    = 7 * 24 * time.Hour
	DefaultPollMaxEvents = 100
)

// EventsApplied are the event types the receiver asks for and applies.
var EventsApplied = []string{
	ssf.EventSessionRevoked,
	ssf.EventAccountDisabled,
	ssf.EventAccountEnabled,
	ssf.EventCredentialCompromise,
	ssf.EventAccountPurged,
}

// Config tunes a Receiver; zero fields take the defaults.
type Config struct {
	// PublicURL is this authority's base URL as transmitters reach it
	// (serve --public-url): push endpoints are PublicURL/ssf/receive/<id>.
	PublicURL string
	Logger    *slog.Logger
	// Clock (default: the authority's).
	Clock func() time.Time
	// MaxSkew bounds how far in the future a SET's iat may be.
	MaxSkew time.Duration
	// PushMaxAge and PollMaxAge bound how old a pushed or polled SET's iat
	// may be.
	PushMaxAge time.Duration
	PollMaxAge time.Duration
	// PollMaxEvents is the maxEvents of each poll.
	PollMaxEvents int
}

// Receiver receives and applies the signals of the configured
// transmitters.
type Receiver struct {
	auth *authority.Authority
	cfg  Config
	log  *slog.Logger

	mu sync.Mutex
	// locks serialise the SETs of one transmitter on this replica.
	locks map[string]*sync.Mutex
	// refetched: the last JWKS refetch for an unknown kid, per transmitter.
	refetched map[string]time.Time
	stats     Stats
	// kick wakes Run when this replica added or removed a transmitter.
	kick chan struct{}
}

// Stats counts what this replica received.
type Stats struct {
	Received   uint64            // SETs that reached verification
	Applied    uint64            // SETs applied (or accepted without action) and recorded
	Duplicates uint64            // SETs refused as replays of a jti received before
	Refused    map[string]uint64 // other refusals, by ErrorReason name
}

// New returns a Receiver over auth.
func New(auth *authority.Authority, cfg Config) *Receiver {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = auth.Config().Clock
	}
	cfg.MaxSkew = cmp.Or(cfg.MaxSkew, DefaultMaxSkew)
	cfg.PushMaxAge = cmp.Or(cfg.PushMaxAge, DefaultPushMaxAge)
	cfg.PollMaxAge = cmp.Or(cfg.PollMaxAge, DefaultPollMaxAge)
	cfg.PollMaxEvents = cmp.Or(cfg.PollMaxEvents, DefaultPollMaxEvents)
	return &Receiver{
		auth: auth, cfg: cfg, log: cfg.Logger,
		locks: map[string]*sync.Mutex{}, refetched: map[string]time.Time{},
		stats: Stats{Refused: map[string]uint64{}},
		kick:  make(chan struct{}, 1),
	}
}

func (r *Receiver) now() time.Time { return r.cfg.Clock().UTC().Round(0) }

// Stats returns a copy of this replica's counts.
func (r *Receiver) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.stats
	out.Refused = make(map[string]uint64, len(r.stats.Refused))
	for k, v := range r.stats.Refused {
		out.Refused[k] = v
	}
	return out
}

func (r *Receiver) count(f func(*Stats)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.stats)
}

// lock returns the mutex of one transmitter's SETs.
func (r *Receiver) lock(id string) *sync.Mutex {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.locks[id]
	if m == nil {
		m = &sync.Mutex{}
		r.locks[id] = m
	}
	return m
}

func (r *Receiver) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// actor is who a transmitter's actions are by.
func actor(id string) authority.Actor {
	return authority.Actor{Name: "ssf:" + id, Channel: authority.ChannelSignals}
}
