package transmitter

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

// Config configures a Transmitter. Zero fields take the defaults.
type Config struct {
	// Store holds the streams and the event log (the store the Authority
	// is over; see the package doc for why both).
	Store storage.Store
	// Authority signs the SETs and announces expired bans.
	Authority *authority.Authority
	// Issuer is the public base URL of this authority: the SETs' iss, the
	// configuration's issuer and the base of its endpoints.
	Issuer string
	// Clock returns the current time (default time.Now): iat, outages,
	// min_verification_interval.
	Clock func() time.Time
	// HTTPClient pushes SETs (default: a client with a 30 s timeout). It
	// follows no redirect: a receiver answering 3xx is failing. Without a
	// Transport it gets one that keeps MaxInFlight idle connections per
	// host (a windowed stream's POSTs in flight).
	HTTPClient *http.Client
	// InsecurePush admits push endpoints over plain http on any host, not
	// only loopback (serve --insecure).
	InsecurePush bool
	// Logger receives the delivery logs (default slog.Default()).
	Logger *slog.Logger
	// MaxOutage is how long a push stream's receiver may fail before the
	// stream is paused (default 1h).
	MaxOutage time.Duration
	// MinBackoff and MaxBackoff bound the wait between retries of a push
	// (defaults 1 s and 1 min); the wait doubles from one to the other.
	MinBackoff, MaxBackoff time.Duration
	// PollWait is the longest a poll without returnImmediately waits for a
	// SET (default 30 s).
	PollWait time.Duration
	// MinVerificationInterval is the stream's min_verification_interval
	// (default 15 s).
	MinVerificationInterval time.Duration
	// Holder names this replica in push leases (default: random, one per
	// Transmitter).
	Holder string
	// PushLease is how long a replica's hold on a push stream lasts
	// unrenewed (default 15 s): a replica that crashed hands its streams
	// over after at most this. LeaseRetry is how often the other replicas
	// try to take a lease that is held (default 5 s, wall time).
	PushLease, LeaseRetry time.Duration
}

// Defaults of Config.
const (
	DefaultMaxOutage               = time.Hour
	DefaultMinBackoff              = time.Second
	DefaultMaxBackoff              = time.Minute
	DefaultPollWait                = 30 * time.Second
	DefaultMinVerificationInterval = 15 * time.Second
	DefaultPushLease               = 15 * time.Second
	DefaultLeaseRetry              = 5 * time.Second
	// positionEvery is how often a worker writes its stream's Position at
	// most.
	positionEvery = 100 * time.Millisecond
)

// Transmitter manages the streams and delivers their SETs.
type Transmitter struct {
	cfg Config
	log *slog.Logger

	mu sync.Mutex
	// lastVerify is when each stream last asked for a verification event
	// (this replica's memory: the interval is a courtesy bound, not state).
	lastVerify map[string]time.Time
	counters   map[string]*counters
	// kick wakes the ban-expiry announcer when a ban expiring before
	// earliest (under mu) arrives.
	kick     chan struct{}
	earliest time.Time
}

// counters are one stream's delivery counts on this replica.
type counters struct {
	delivered, failed, skipped, polls atomic.Uint64
}

// StreamCounts are one stream's delivery counts on this replica since it
// started: SETs pushed and accepted, push attempts that failed (each
// retry counts), SETs the receiver refused for good (400) and skipped,
// and poll requests.
type StreamCounts struct {
	StreamID                          string
	Delivered, Failed, Skipped, Polls uint64
}

// New returns a Transmitter; Run starts its delivery.
func New(cfg Config) *Transmitter {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	client := http.Client{Timeout: 30 * time.Second}
	if cfg.HTTPClient != nil {
		client = *cfg.HTTPClient
	}
	if dt, ok := http.DefaultTransport.(*http.Transport); ok && client.Transport == nil {
		// A windowed stream keeps up to MaxInFlight POSTs to its receiver:
		// the default transport keeps 2 idle connections per host and
		// would close (and then open again) the others after every answer.
		tr := dt.Clone()
		tr.MaxIdleConnsPerHost = MaxInFlight
		tr.MaxIdleConns = 0 // no total bound: streams bound the hosts
		client.Transport = tr
	}
	// A redirect would carry the SET (and the Authorization header) to a
	// URL the receiver did not register.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cfg.HTTPClient = &client
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	cfg.MaxOutage = cmp.Or(cfg.MaxOutage, DefaultMaxOutage)
	cfg.MinBackoff = cmp.Or(cfg.MinBackoff, DefaultMinBackoff)
	cfg.MaxBackoff = max(cmp.Or(cfg.MaxBackoff, DefaultMaxBackoff), cfg.MinBackoff)
	cfg.PollWait = cmp.Or(cfg.PollWait, DefaultPollWait)
	cfg.MinVerificationInterval = cmp.Or(cfg.MinVerificationInterval, DefaultMinVerificationInterval)
	cfg.PushLease = cmp.Or(cfg.PushLease, DefaultPushLease)
	cfg.LeaseRetry = cmp.Or(cfg.LeaseRetry, DefaultLeaseRetry)
	if cfg.Holder == "" {
		var b [8]byte
		_, _ = rand.Read(b[:]) // never fails (crypto/rand)
		cfg.Holder = "tx-" + hex.EncodeToString(b[:])
	}
	return &Transmitter{cfg: cfg, log: cfg.Logger, lastVerify: map[string]time.Time{},
		counters: map[string]*counters{}, kick: make(chan struct{}, 1)}
}

// now is the clock in UTC at the store's precision.
func (t *Transmitter) now() time.Time { return t.cfg.Clock().UTC().Round(0) }

func (t *Transmitter) count(streamID string) *counters {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.counters[streamID]
	if !ok {
		c = &counters{}
		t.counters[streamID] = c
	}
	return c
}

// Counts returns every stream's counts on this replica, by stream ID.
func (t *Transmitter) Counts() []StreamCounts {
	t.mu.Lock()
	out := make([]StreamCounts, 0, len(t.counters))
	for id, c := range t.counters {
		out = append(out, StreamCounts{StreamID: id, Delivered: c.delivered.Load(), Failed: c.failed.Load(),
			Skipped: c.skipped.Load(), Polls: c.polls.Load()})
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].StreamID < out[j].StreamID })
	return out
}
