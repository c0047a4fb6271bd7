package server

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/ratelimit"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/fleet"
	"github.com/portcullis-dev/portcullis/internal/receiver"
	"github.com/portcullis-dev/portcullis/rpcerr"
)

// Options tune the server. Zero fields take the defaults.
type Options struct {
	// Logger receives one line per RPC and the server's own logs.
	Logger *slog.Logger
	// CheckpointInterval is how often an idle Watch stream gets a
	// checkpoint (default 5s). A mirror's staleness bound must exceed it.
	CheckpointInterval time.Duration
	// SendTimeout ends a Watch stream whose subscriber has not taken a
	// message for this long (default 30s).
	SendTimeout time.Duration
	// ProgressTimeout ends the Watch stream of a mirror that reports
	// progress when it has sent no report for this long, so
	// that a dead mirror drops out of ListSubscribers and of the set that
	// writes with a wait wait for (default 3 checkpoint intervals, at least
	// 1s; a live mirror reports at every checkpoint). While a mirror loads
	// a snapshot, the load timeout applies instead: ten of these, at least
	// SendTimeout (internal/fleet, Fleet.Deadline).
	ProgressTimeout time.Duration
	// SnapshotPartSize bounds the encoded size of one message of a Watch
	// snapshot, in bytes (default DefaultSnapshotPartSize, 1 MiB): a
	// larger snapshot is sent as several parts (Snapshot.more), so that no
	// subscriber needs more than gRPC's default 4 MiB receive limit. A
	// part exceeds it only when one ban or revoked session alone does.
	// Tests lower it to split small snapshots.
	SnapshotPartSize int
	// Limits bound what one caller or connection may use (limits.go);
	// zero fields take DefaultLimits.
	Limits Limits
	// Metrics are served on /metrics (default: NewMetrics(), without the
	// store instrumentation).
	Metrics *Metrics
	// PublicURL is the authority's base URL as other services reach it
	// (serve --public-url): the Shared Signals push endpoint is
	// PublicURL/ssf/receive/<transmitter id>.
	PublicURL string
	// Receiver is the Shared Signals receiver, run by whoever made it
	// (serve); nil: the server makes one and runs it until Shutdown.
	Receiver *receiver.Receiver
}

// Server serves the portcullis.v1 API over an Authority.
type Server struct {
	auth *authority.Authority
	log  *slog.Logger
	opts Options
	// fleet holds the Watch subscribers, their progress and the other
	// replicas' (internal/fleet).
	fleet   *fleet.Fleet
	health  *health.Server
	metrics *Metrics

	closeOnce sync.Once
	closing   chan struct{}

	// denied audits denied calls, one by one or in summaries (deniedaudit.go).
	denied *deniedAuditor

	watchers  watchSlots    // open Watch streams per API key
	snapshots snapshotCache // Watch snapshots shared among subscribers
	// snapBackoff limits the snapshots of mirrors that do not acknowledge
	// them (snapbackoff.go).
	snapBackoff snapshotBackoff
}

// New returns a server for auth.
func New(auth *authority.Authority, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = 5 * time.Second
	}
	if opts.SendTimeout <= 0 {
		opts.SendTimeout = 30 * time.Second
	}
	if opts.SnapshotPartSize <= 0 {
		opts.SnapshotPartSize = DefaultSnapshotPartSize
	}
	opts.Limits = opts.Limits.withDefaults()
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
	s := &Server{auth: auth, log: opts.Logger, opts: opts, health: health.NewServer(), closing: make(chan struct{}), metrics: opts.Metrics}
	s.fleet = fleet.New(fleet.Config{ProgressTimeout: progressTimeout(opts), LoadTimeout: loadTimeout(opts), Logger: s.log})
	opts.Metrics.server = s
	s.denied = newDeniedAuditor(opts.Limits, s.now, s.closing, s.log, auth.RecordDenied, auth.RecordDeniedSummary)
	s.registerFleetMetrics()
	if p, ok := auth.Presence(); ok {
		s.fleet.Join(s.closing, p)
	}
	return s
}

func (s *Server) now() time.Time { return s.auth.Config().Clock() }

func (s *Server) status(ctx context.Context, err error) error { return toStatus(ctx, s.log, err) }

// ServerOptions returns the interceptors every Portcullis gRPC server
// needs: panic recovery (Internal, never a crash), one log line per RPC,
// and API-key authentication with the scope table.
func (s *Server) ServerOptions() []grpc.ServerOption {
	a := &authenticator{auth: s.auth, log: s.log, audits: s.denied,
		failures: newKeyedLimiter("failed_auth", s.opts.Limits.FailedAuthPerSecond, s.opts.Limits.FailedAuthBurst)}
	rateLimiter, keepLimitStatus := keepStatus(methodLimiter{
		refresh: newKeyedLimiter("refresh", s.opts.Limits.RefreshPerSecond, s.opts.Limits.RefreshBurst),
		create:  newKeyedLimiter("create_session", s.opts.Limits.CreateSessionPerSecond, s.opts.Limits.CreateSessionBurst),
	})
	recoverFn := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		s.log.ErrorContext(ctx, "panic in handler", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return rpcerr.New(pb.ErrorReason_INTERNAL, "internal error; the authority logged the cause", nil)
	})
	logger := logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		s.log.Log(ctx, slog.Level(lvl), msg, fields...)
	})
	logOpts := []logging.Option{logging.WithLogOnEvents(logging.FinishCall)}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(append(s.metrics.unaryInterceptors(),
			recovery.UnaryServerInterceptor(recoverFn),
			logging.UnaryServerInterceptor(logger, logOpts...),
			tenantField,
			selector.UnaryServerInterceptor(auth.UnaryServerInterceptor(a.authenticate), needsAuth),
			keepLimitStatus, ratelimit.UnaryServerInterceptor(rateLimiter),
		)...),
		grpc.ChainStreamInterceptor(append(s.metrics.streamInterceptors(),
			recovery.StreamServerInterceptor(recoverFn),
			logging.StreamServerInterceptor(logger, logOpts...),
			selector.StreamServerInterceptor(auth.StreamServerInterceptor(a.authenticate), needsAuth),
		)...),
	}
}

// Register registers every portcullis.v1 service, health and reflection on
// g.
func (s *Server) Register(g *grpc.Server) {
	pb.RegisterSessionServiceServer(g, sessionService{Server: s})
	pb.RegisterBanServiceServer(g, banService{Server: s})
	pb.RegisterEventServiceServer(g, eventService{Server: s})
	pb.RegisterKeyServiceServer(g, keyService{Server: s})
	pb.RegisterAuditServiceServer(g, auditService{Server: s})
	pb.RegisterAPIKeyServiceServer(g, apiKeyService{Server: s})
	pb.RegisterIssuerServiceServer(g, s.newIssuerService()) // issuers.go: starts the key fetcher
	pb.RegisterSignalServiceServer(g, s.newSignalService()) // signals.go
	grpc_health_v1.RegisterHealthServer(g, s.health)
	registerReflection(g) // reflection.go: with the protos' comments
}

// NewGRPCServer returns a grpc.Server with the interceptors and every
// service registered, plus extra options (credentials, limits).
//
// Calls run on a pool of GOMAXPROCS reused goroutines (grpc falls back to a
// new goroutine when all are busy, e.g. holding Watch streams). A fresh
// goroutine per call grows its stack through the interceptor chain on
// every call, which the pool avoids (BENCHMARKS.md, "Mirror progress and
// waited writes", has the measurement).
func (s *Server) NewGRPCServer(extra ...grpc.ServerOption) *grpc.Server {
	opts := append(s.ServerOptions(), grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))))
	g := grpc.NewServer(append(append(opts, s.opts.Limits.transportOptions()...), extra...)...)
	s.Register(g)
	s.metrics.grpc.InitializeMetrics(g)
	return g
}

// Shutdown marks the server not serving and ends every Watch stream with
// Unavailable, so that grpc.Server.GracefulStop does not wait for them.
func (s *Server) Shutdown() {
	s.closeOnce.Do(func() {
		s.health.Shutdown()
		close(s.closing)
	})
}
