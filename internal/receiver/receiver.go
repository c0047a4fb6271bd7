package receiver

import (
	"cmp"
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/ssf"
)

// Defaults of Config.
const (
	DefaultMaxSkew       = 5 * time.Minute
	DefaultPushMaxAge    = time.Hour
	DefaultPollMaxAge    = 7 * 24 * time.Hour
	DefaultPollMaxEvents = 100
	DefaultHoldTimeout   = 3 * time.Second
	// DefaultPushInFlight is the portcullis_max_in_flight the receiver
	// asks a push transmitter for.
	DefaultPushInFlight = 64
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
	// HoldTimeout bounds how long a pushed SET waits for the predecessor
	// it names (ssf.SET.PrevJTI) before it is refused as retryable
	// (ErrSETPredecessorMissing): the transmitter sends it again.
	HoldTimeout time.Duration
	// PushInFlight is the portcullis_max_in_flight asked of push
	// transmitters (1: one SET at a time).
	PushInFlight int
}

// Receiver receives and applies the signals of the configured
// transmitters.
type Receiver struct {
	auth *authority.Authority
	cfg  Config
	log  *slog.Logger

	mu sync.Mutex
	// sequencers order and apply the pushed SETs of each transmitter on
	// this replica.
	sequencers map[string]*sequencer
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
	cfg.HoldTimeout = cmp.Or(cfg.HoldTimeout, DefaultHoldTimeout)
	cfg.PushInFlight = cmp.Or(cfg.PushInFlight, DefaultPushInFlight)
	return &Receiver{
		auth: auth, cfg: cfg, log: cfg.Logger,
		sequencers: map[string]*sequencer{}, refetched: map[string]time.Time{},
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

// sequencer returns the sequencer of one transmitter's pushed SETs.
func (r *Receiver) sequencer(id string) *sequencer {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sequencers[id]
	if s == nil {
		s = newSequencer(r.cfg.HoldTimeout, r.applyRun, func(ctx context.Context, jtis ...string) bool {
			return r.received(ctx, id, jtis...)
		})
		r.sequencers[id] = s
	}
	return s
}

// received reports whether a SET of transmitter id with one of jtis was
// recorded, in one read (false when the store cannot say).
func (r *Receiver) received(ctx context.Context, id string, jtis ...string) bool {
	found := false
	_ = r.auth.View(ctx, func(tx storage.ReadTx) error {
		for _, jti := range jtis {
			if _, err := tx.ReceivedSET(storage.ReceivedSETKey(id, jti)); err == nil {
				found = true
				return nil
			}
		}
		return nil
	})
	return found
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
