package authority

import (
	"cmp"
	"crypto/ed25519"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// Config tunes an Authority. Zero fields take the defaults.
type Config struct {
	// Issuer is the "iss" of access tokens (default "portcullis").
	Issuer string
	// Audience is the "aud" of access tokens, which VerifySession and the
	// Mirror require (default "portcullis").
	Audience string
	// AccessTTL is the lifetime of an access token (default 15m).
	AccessTTL time.Duration
	// SessionTTL is the lifetime of a session and its refresh tokens
	// (default 720h).
	SessionTTL time.Duration
	// Clock returns the current time (default time.Now).
	Clock func() time.Time
	// Logger receives domain logs (default slog.Default()).
	Logger *slog.Logger
	// InsecureIssuers admits external issuers (and their JWKS) over plain
	// http on any host, not only loopback (serve --insecure).
	InsecureIssuers bool
	// IssuerHTTPClient fetches external issuers' discovery documents and
	// JWKS (default: a plain http.Client); its timeout and redirect policy
	// are replaced by the fetcher's (issuerfetch.go).
	IssuerHTTPClient *http.Client
}

// Defaults of Config.
const (
	DefaultIssuer     = "portcullis"
	DefaultAudience   = "portcullis"
	DefaultAccessTTL  = 15 * time.Minute
	DefaultSessionTTL = 30 * 24 * time.Hour
)

// Actor is who performs an action: the caller's API key name, network
// address and the channel it came through (ChannelGRPC, ChannelConsole,
// ChannelHTTP, ChannelSignals). They go into audit records and revocation
// reasons.
type Actor struct {
	Name    string
	Addr    string
	Channel string
}

// The channels an actor comes through, as audit records name them. The
// server sets them; the domain only copies them into the records.
const (
	ChannelGRPC    = "grpc"
	ChannelConsole = "console"
	// ChannelHTTP: the authority's plain HTTP endpoints (RFC 7009
	// token revocation).
	ChannelHTTP = "http"
	// ChannelSignals: Shared Signals, both ways: a receiver of this
	// authority's events managing its streams, and the changes this
	// authority's receiver applied (actor "ssf:<transmitter id>").
	ChannelSignals = "ssf"
)

// System is the actor of changes Portcullis makes by itself.
var System = Actor{Name: "system"}

// Authority applies the domain rules over a Store.
type Authority struct {
	store storage.Store
	cfg   Config
	log   *slog.Logger

	// keys caches parsed signing keys by ID: parsing an Ed25519 seed costs
	// a scalar multiplication, and keys never change once created.
	keys sync.Map // string -> ed25519.PrivateKey
	// setKeys caches the parsed RS256 SET key by ID (setsigner.go), and
	// setKeyMu makes one goroutine generate it on first use.
	setKeys  sync.Map // string -> *rsa.PrivateKey
	setKeyMu sync.Mutex
	// current is the signing key last seen current, for presigning; a
	// write transaction always re-checks it.
	current atomic.Pointer[storage.SigningKey]
	// issuers is the external-issuer key fetcher's state (issuerfetch.go).
	issuers issuerState
}

// New returns an Authority over store.
func New(store storage.Store, cfg Config) *Authority {
	cfg.Issuer = cmp.Or(cfg.Issuer, DefaultIssuer)
	cfg.Audience = cmp.Or(cfg.Audience, DefaultAudience)
	if cfg.AccessTTL <= 0 {
		cfg.AccessTTL = DefaultAccessTTL
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Authority{store: store, cfg: cfg, log: cfg.Logger}
}

// Config returns the effective configuration.
func (a *Authority) Config() Config { return a.cfg }

// now is the authority's clock, in UTC, at the precision the store keeps.
func (a *Authority) now() time.Time { return a.cfg.Clock().UTC().Round(0) }

func (a *Authority) privateKey(k storage.SigningKey) ed25519.PrivateKey {
	if v, ok := a.keys.Load(k.ID); ok {
		return v.(ed25519.PrivateKey)
	}
	pk := ed25519.NewKeyFromSeed(k.PrivateKey)
	a.keys.Store(k.ID, pk)
	return pk
}
