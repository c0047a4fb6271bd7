package server

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/ratelimit"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/rpcerr"
)

// Limits bound what one caller or one connection may cost the authority.
// A zero field takes its default; a negative one turns the limit off.
// Request field sizes and page sizes are bounded in internal/authority.
type Limits struct {
	// MaxRecvMsgSize is the largest request message, in bytes (default
	// 1 MiB). A larger one is refused with ResourceExhausted, reason
	// RESOURCE_EXHAUSTED, metadata limit=max_recv_msg_size and max_bytes;
	// one over 4 times it by gRPC itself, without ErrorInfo (msgsize.go
	// says why).
	MaxRecvMsgSize int
	// MaxConcurrentStreams is the most calls in flight on one connection
	// (default 1000); more wait for a free one.
	MaxConcurrentStreams int
	// KeepaliveMinTime is the shortest interval between client pings the
	// server tolerates (default 10s); a client pinging more often is sent
	// GOAWAY. KeepaliveNoStreamPings permits pings on a connection with no
	// call in flight (default false: off).
	KeepaliveMinTime       time.Duration
	KeepaliveNoStreamPings bool
	// RefreshPerSecond and RefreshBurst limit RefreshSession per peer IP
	// address (default 1000/s, burst 2000): the refresh token is the only
	// credential, so the network address is the caller.
	RefreshPerSecond float64
	RefreshBurst     int
	// CreateSessionPerSecond and CreateSessionBurst limit CreateSession per
	// API key (default 1000/s, burst 2000).
	CreateSessionPerSecond float64
	CreateSessionBurst     int
	// FailedAuthPerSecond and FailedAuthBurst limit failed
	// authentications (missing, unknown, revoked or expired API keys) per
	// peer IP address (default 5/s, burst 50). Beyond it the failures are
	// answered ResourceExhausted and not audited one by one, so that a
	// flood of bad keys cannot flood the audit log; valid keys from the
	// same address are not affected.
	FailedAuthPerSecond float64
	FailedAuthBurst     int
	// MaxWatchersPerKey bounds the open Watch streams of one API key
	// (default 4096: one API key is typically shared by every instance of a
	// service, each running a Mirror).
	MaxWatchersPerKey int
	// DeniedAuditPerSecond and DeniedAuditBurst bound the denied calls
	// (bad or missing API key, missing scope) audited one by one, across
	// every address (default 5/s, burst 100): a flood from many addresses
	// passes any per-address limit. Past the bound, and for the calls the
	// per-address limit refused, the calls are counted into a
	// call.denied.summary record (how many, from how many addresses, why,
	// the busiest addresses) written at most once per
	// DeniedSummaryInterval (default 1m; zero or negative takes it).
	// Negative: no global bound.
	DeniedAuditPerSecond  float64
	DeniedAuditBurst      int
	DeniedSummaryInterval time.Duration
}

// DefaultLimits are the limits a zero Limits takes.
var DefaultLimits = Limits{
	MaxRecvMsgSize:         1 << 20,
	MaxConcurrentStreams:   1000,
	KeepaliveMinTime:       10 * time.Second,
	RefreshPerSecond:       1000,
	RefreshBurst:           2000,
	CreateSessionPerSecond: 1000,
	CreateSessionBurst:     2000,
	FailedAuthPerSecond:    5,
	FailedAuthBurst:        50,
	MaxWatchersPerKey:      4096,
	DeniedAuditPerSecond:   5,
	DeniedAuditBurst:       100,
	DeniedSummaryInterval:  time.Minute,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	l.MaxRecvMsgSize = cmp.Or(l.MaxRecvMsgSize, d.MaxRecvMsgSize)
	l.MaxConcurrentStreams = cmp.Or(l.MaxConcurrentStreams, d.MaxConcurrentStreams)
	l.KeepaliveMinTime = cmp.Or(l.KeepaliveMinTime, d.KeepaliveMinTime)
	l.RefreshPerSecond = cmp.Or(l.RefreshPerSecond, d.RefreshPerSecond)
	l.RefreshBurst = cmp.Or(l.RefreshBurst, d.RefreshBurst)
	l.CreateSessionPerSecond = cmp.Or(l.CreateSessionPerSecond, d.CreateSessionPerSecond)
	l.CreateSessionBurst = cmp.Or(l.CreateSessionBurst, d.CreateSessionBurst)
	l.FailedAuthPerSecond = cmp.Or(l.FailedAuthPerSecond, d.FailedAuthPerSecond)
	l.FailedAuthBurst = cmp.Or(l.FailedAuthBurst, d.FailedAuthBurst)
	l.MaxWatchersPerKey = cmp.Or(l.MaxWatchersPerKey, d.MaxWatchersPerKey)
	l.DeniedAuditPerSecond = cmp.Or(l.DeniedAuditPerSecond, d.DeniedAuditPerSecond)
	l.DeniedAuditBurst = cmp.Or(l.DeniedAuditBurst, d.DeniedAuditBurst)
	if l.DeniedSummaryInterval <= 0 {
		l.DeniedSummaryInterval = d.DeniedSummaryInterval
	}
	return l
}

// transportOptions are the connection-level limits.
func (l Limits) transportOptions() []grpc.ServerOption {
	var opts []grpc.ServerOption
	if l.MaxRecvMsgSize > 0 {
		opts = append(opts, newSizeCodec(l.MaxRecvMsgSize).serverOptions()...) // msgsize.go
	}
	if l.MaxConcurrentStreams > 0 {
		opts = append(opts, grpc.MaxConcurrentStreams(uint32(l.MaxConcurrentStreams)))
	}
	if l.KeepaliveMinTime > 0 {
		opts = append(opts, grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime: l.KeepaliveMinTime, PermitWithoutStream: l.KeepaliveNoStreamPings,
		}))
	}
	return opts
}

// limitError is the ResourceExhausted every rate limit answers, with an
// ErrorInfo (reason RESOURCE_EXHAUSTED, metadata "limit").
func limitError(limit, msg string) error { return newLimitError(limit, msg, nil) }

// newLimitError is limitError with more metadata.
func newLimitError(limit, msg string, meta map[string]string) error {
	m := map[string]string{rpcerr.MetaLimit: limit}
	for k, v := range meta {
		m[k] = v
	}
	return rpcerr.New(pb.ErrorReason_RESOURCE_EXHAUSTED, msg, m)
}

// keyedLimiter is a token bucket (golang.org/x/time/rate) per key. Buckets
// that have refilled are dropped when the map grows, which loses nothing:
// a full bucket is a new one. A nil keyedLimiter allows everything.
type keyedLimiter struct {
	name  string
	limit rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	sweepAt int
}

func newKeyedLimiter(name string, perSecond float64, burst int) *keyedLimiter {
	if perSecond < 0 || burst < 0 {
		return nil
	}
	return &keyedLimiter{name: name, limit: rate.Limit(perSecond), burst: burst, buckets: map[string]*rate.Limiter{}, sweepAt: 1024}
}

func (k *keyedLimiter) allow(key string) bool {
	if k == nil {
		return true
	}
	now := time.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	b, ok := k.buckets[key]
	if !ok {
		if len(k.buckets) >= k.sweepAt {
			for id, l := range k.buckets {
				if l.TokensAt(now) >= float64(k.burst) {
					delete(k.buckets, id)
				}
			}
			k.sweepAt = max(1024, 2*len(k.buckets))
		}
		b = rate.NewLimiter(k.limit, k.burst)
		k.buckets[key] = b
	}
	return b.AllowN(now, 1)
}

// peerIP is the caller's network address without the port.
func peerIP(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
		return host
	}
	return p.Addr.String()
}

// methodLimiter implements ratelimit.Limiter for the per-method limits:
// RefreshSession by peer IP, CreateSession by API key.
type methodLimiter struct {
	refresh, create *keyedLimiter
}

var _ ratelimit.Limiter = methodLimiter{}

func (m methodLimiter) Limit(ctx context.Context) error {
	method, _ := grpc.Method(ctx)
	switch method {
	case pb.SessionService_RefreshSession_FullMethodName:
		if !m.refresh.allow(peerIP(ctx)) {
			return limitError("refresh_rate", "too many RefreshSession calls from this address; retry with backoff")
		}
	case pb.SessionService_CreateSession_FullMethodName:
		var id string
		if k, ok := ctx.Value(callerKey{}).(storage.APIKey); ok {
			id = k.ID
		}
		if !m.create.allow(id) {
			return limitError("create_session_rate", "too many CreateSession calls with this API key; retry with backoff")
		}
	}
	return nil
}

// keepStatus restores the status a Limiter returned: the ratelimit
// middleware flattens it into a message, losing the ErrorInfo.
func keepStatus(l ratelimit.Limiter) (ratelimit.Limiter, grpc.UnaryServerInterceptor) {
	type key struct{}
	wrapped := limiterFunc(func(ctx context.Context) error {
		err := l.Limit(ctx)
		if err != nil {
			if slot, ok := ctx.Value(key{}).(*error); ok {
				*slot = err
			}
		}
		return err
	})
	outer := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		var limited error
		resp, err := h(context.WithValue(ctx, key{}, &limited), req)
		if limited != nil && status.Code(err) == codes.ResourceExhausted {
			return nil, limited
		}
		return resp, err
	}
	return wrapped, outer
}

type limiterFunc func(context.Context) error

func (f limiterFunc) Limit(ctx context.Context) error { return f(ctx) }

// watchSlots counts the open Watch streams of each API key.
type watchSlots struct {
	mu sync.Mutex
	n  map[string]int
}

// acquire takes a slot for key, or fails with ResourceExhausted when it
// holds max already (max <= 0: no bound).
func (w *watchSlots) acquire(key string, limit int) (release func(), err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n == nil {
		w.n = map[string]int{}
	}
	if limit > 0 && w.n[key] >= limit {
		return nil, limitError("watchers_per_key", fmt.Sprintf("this API key has %d Watch streams open, the most allowed; close one or use another key", w.n[key]))
	}
	w.n[key]++
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.n[key]--; w.n[key] <= 0 {
			delete(w.n, key)
		}
	}, nil
}
