package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/receiver"
	"github.com/portcullis-dev/portcullis/internal/transmitter"
	"github.com/portcullis-dev/portcullis/server"
)

type serveConfig struct {
	listen             string
	httpListen         string
	dataDir            string
	insecure           bool
	logFormat          string
	logLevel           string
	issuer             string
	audience           string
	accessTTL          time.Duration
	sessionTTL         time.Duration
	checkpointInterval time.Duration
	sessionRetention   time.Duration
	auditRetention     time.Duration
	sweepInterval      time.Duration
	retainRevisions    int64
	shutdownTimeout    time.Duration
	console            string // auto, on or off
	tlsCert            string // tls.go
	tlsKey             string
	clientCA           string
	limits             server.Limits // limits.go
	store              storeConfig   // store.go
	publicURL          string        // Shared Signals issuer and endpoints' base
	ssfMaxOutage       time.Duration // a push receiver failing this long pauses its stream
}

func newServeCommand() *cobra.Command {
	var c serveConfig
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the authority",
		Long: `Run the Portcullis authority: the gRPC API (with server reflection, so grpcurl
works) on --listen and health on --http-listen, over the bbolt file
<data>/portcullis.db, or with --store etcd://HOST:PORT[,...] as one of several
replicas over an etcd cluster. On first start with an empty store it creates a
signing key and an API key named bootstrap-admin with scope admin, written to
<data>/admin.key (0600) by the replica that created it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := flagsFromEnv(cmd.Flags()); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve(ctx, c, cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.listen, "listen", "127.0.0.1:7470", "gRPC listen address")
	f.StringVar(&c.httpListen, "http-listen", "127.0.0.1:7471", "HTTP listen address for /healthz, /readyz, /metrics and /.well-known/jwks.json (empty: off)")
	f.StringVar(&c.dataDir, "data", "./data", "directory of the bbolt file and admin.key")
	f.BoolVar(&c.insecure, "insecure", false, "allow plaintext listeners on non-loopback addresses, and external issuers (issuers add) over plain http")
	f.StringVar(&c.logFormat, "log-format", "json", "log format: json or text")
	f.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&c.issuer, "issuer", authority.DefaultIssuer, `the "iss" of access tokens`)
	f.StringVar(&c.audience, "audience", authority.DefaultAudience, `the "aud" of access tokens, which verifiers check (client.MirrorOptions.Audience)`)
	f.DurationVar(&c.accessTTL, "access-ttl", authority.DefaultAccessTTL, "access token lifetime")
	f.DurationVar(&c.sessionTTL, "session-ttl", authority.DefaultSessionTTL, "session (refresh token) lifetime")
	f.DurationVar(&c.checkpointInterval, "checkpoint-interval", 5*time.Second, "how often idle Watch streams get a checkpoint")
	f.DurationVar(&c.sessionRetention, "session-retention", authority.DefaultSessionRetention, "how long ended sessions and their refresh tokens stay (listable with sessions --all) before the sweeper deletes them")
	f.DurationVar(&c.auditRetention, "audit-retention", authority.DefaultAuditRetention, "how long audit records stay before the sweeper deletes them (0: forever)")
	f.DurationVar(&c.sweepInterval, "sweep-interval", 10*time.Minute, "how often to delete sessions ended more than --session-retention ago and audit records older than --audit-retention (0: never)")
	f.Int64Var(&c.retainRevisions, "retain-revisions", 100000, "how many revisions of the event log to keep for resuming watchers")
	f.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long to wait for calls in flight on shutdown")
	f.StringVar(&c.console, "console", "auto", "serve the operator console under /console/ on the HTTP listener: auto (when --http-listen is a loopback address), on, or off")
	f.StringVar(&c.publicURL, "public-url", "", "the authority's public base URL: the Shared Signals issuer and the base of its endpoints (default http://<--http-listen>)")
	f.DurationVar(&c.ssfMaxOutage, "ssf-max-outage", transmitter.DefaultMaxOutage, "how long a Shared Signals push receiver may fail before its stream is paused")
	addTLSFlags(f, &c)
	addLimitFlags(f, &c.limits)
	addStoreFlags(f, &c.store)
	return cmd
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level: %w", err)}
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, usageError{fmt.Errorf("--log-format: want json or text, not %q", format)}
}

// checkPlaintext refuses a plaintext listener that others can reach unless
// --insecure says so (docs/design.md section 6).
func checkPlaintext(flag, addr string, insecure bool, log *slog.Logger) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usageError{fmt.Errorf("--%s %q: %w", flag, addr, err)}
	}
	ip := net.ParseIP(host)
	if host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	if !insecure {
		return usageError{fmt.Errorf("--%s %s is not a loopback address: plaintext there needs TLS (--tls-cert, --tls-key) or --insecure", flag, addr)}
	}
	log.Warn("plaintext listener on a non-loopback address (--insecure)", "flag", flag, "address", addr)
	return nil
}

func serve(ctx context.Context, c serveConfig, logOut io.Writer) error {
	log, err := newLogger(logOut, c.logFormat, c.logLevel)
	if err != nil {
		return err
	}
	console, err := consoleOn(c.console, c.httpListen)
	if err != nil {
		return err
	}
	if c.sessionRetention < 0 || c.auditRetention < 0 || c.sweepInterval < 0 {
		return usageError{errors.New("--session-retention, --audit-retention and --sweep-interval must not be negative")}
	}
	tr, err := setupTransport(c, log) // TLS, or plaintext checked against --insecure (tls.go)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if err := checkDataDir(c.dataDir); err != nil {
		return err
	}
	store, where, err := openStore(ctx, c, log) // store.go
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("closing the store", "error", err)
		}
	}()

	metrics := server.NewMetrics() // served on /metrics; the store wrapper times commits
	auth := authority.New(metrics.InstrumentStore(store), authority.Config{
		Issuer: c.issuer, Audience: c.audience, AccessTTL: c.accessTTL, SessionTTL: c.sessionTTL, Logger: log,
		InsecureIssuers: c.insecure, // external issuers over plain http on any host
	})
	if err := auth.EnsureSigningKey(ctx); err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	keyPath := filepath.Join(c.dataDir, "admin.key")
	secret, err := auth.EnsureBootstrapKey(ctx)
	if err != nil {
		return fmt.Errorf("bootstrap key: %w", err)
	}
	if secret != "" {
		if err := os.WriteFile(keyPath, []byte(secret+"\n"), 0o600); err != nil {
			return fmt.Errorf("writing the bootstrap key: %w", err)
		}
		log.Info("created the bootstrap admin API key", "name", authority.BootstrapKeyName, "file", keyPath)
	}

	// The base URL of Shared Signals: the transmitter's issuer, the
	// receiver's push endpoints.
	publicURL := strings.TrimSuffix(c.publicURL, "/")
	if publicURL == "" {
		publicURL = "http://" + c.httpListen
	} else if u, err := url.Parse(publicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return usageError{fmt.Errorf("--public-url %q: want an absolute http(s) URL", c.publicURL)}
	}
	// The Shared Signals receiver (transmitters add) polls and sweeps
	// until shutdown, stopping before the store closes (this defer runs
	// before the store's).
	signals := receiver.New(auth, receiver.Config{PublicURL: publicURL, Logger: log})
	signalsCtx, stopSignals := context.WithCancel(ctx)
	signalsDone := make(chan struct{})
	go func() { defer close(signalsDone); signals.Run(signalsCtx) }()
	defer func() { stopSignals(); <-signalsDone }()
	srv := server.New(auth, server.Options{Logger: log, CheckpointInterval: c.checkpointInterval, Metrics: metrics, Limits: c.limits,
		PublicURL: publicURL, Receiver: signals})
	// The sweeper stops (and its pass in flight ends) before the store
	// closes: this defer runs before the store's.
	sweepCtx, stopSweep := context.WithCancel(ctx)
	sweepDone := make(chan struct{})
	defer func() { stopSweep(); <-sweepDone }()
	if c.sweepInterval > 0 {
		go func() {
			defer close(sweepDone)
			srv.RunSweeper(sweepCtx, server.SweepConfig{
				Interval: c.sweepInterval, SessionRetention: c.sessionRetention, AuditRetention: c.auditRetention,
			})
		}()
	} else {
		close(sweepDone)
	}
	// The Shared Signals transmitter (internal/transmitter): on every
	// replica it pushes the streams' SETs and announces expired bans. Like
	// the sweeper, it stops (writing its streams' positions) before the
	// store closes.
	ssfTx := transmitter.New(transmitter.Config{Store: metrics.InstrumentStore(store), Authority: auth,
		Issuer: publicURL, Logger: log, MaxOutage: c.ssfMaxOutage, InsecurePush: c.insecure, Holder: pushHolder(c.listen)})
	metrics.Registry().MustRegister(server.TransmitterCollector(ssfTx))
	ssfCtx, stopSSF := context.WithCancel(ctx)
	ssfDone := make(chan struct{})
	go func() { defer close(ssfDone); ssfTx.Run(ssfCtx) }()
	defer func() { stopSSF(); <-ssfDone }()

	g := srv.NewGRPCServer(tr.grpc...)
	lis, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}
	errc := make(chan error, 2)
	go func() { errc <- g.Serve(lis) }()

	var hs *http.Server
	if c.httpListen != "" {
		hl, err := net.Listen("tcp", c.httpListen)
		if err != nil {
			g.Stop()
			return err
		}
		hopts := []server.HTTPOption{server.WithTransmitter(ssfTx)}
		if console {
			hopts = append(hopts, server.WithConsole(c.tlsCert != ""))
		}
		hs = &http.Server{Handler: srv.HTTPHandler(hopts...), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := hs.Serve(tr.wrapHTTP(hl)); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	log.Info("portcullis serving", "grpc", lis.Addr().String(), "http", c.httpListen, "data", c.dataDir, "store", where,
		"store_id", store.StoreID())

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-errc:
		log.Error("listener failed", "error", err)
	}
	srv.Shutdown()
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(c.shutdownTimeout):
		log.Warn("calls still in flight at the shutdown timeout; stopping them")
		g.Stop()
	}
	// No call is denied any more: write the count of denied calls not yet
	// in the audit trail before the store closes.
	srv.FlushDeniedAudit(context.WithoutCancel(ctx))
	if hs != nil {
		sctx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}
	return err
}

// consoleOn decides --console: auto serves the console only on a loopback
// HTTP listener, where only this machine's operators reach it.
func consoleOn(flag, httpListen string) (bool, error) {
	switch flag {
	case "on":
		return true, nil
	case "off":
		return false, nil
	case "auto", "": // "": a serveConfig built without the flags
		return isLoopback(httpListen), nil
	}
	return false, usageError{fmt.Errorf("--console: want auto, on or off, not %q", flag)}
}

// pushHolder names this replica in Shared Signals push leases: its host
// and gRPC listen address, which a restarted replica keeps, so that it
// takes its streams back at once instead of waiting for the lease its
// previous run held to run out. Replicas on one host listen on different
// addresses.
func pushHolder(listen string) string {
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	return host + "/" + listen
}
