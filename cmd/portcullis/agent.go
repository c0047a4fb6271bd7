package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/portcullis-dev/portcullis/agent"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// agentConfig are the flags of `portcullis agent` (package agent does the
// deciding; this file connects it to the authority, the listeners and the
// signals).
type agentConfig struct {
	authority      string
	apiKeyFile     string
	caFile         string
	insecure       bool
	listen         string
	extAuthzListen string
	configFile     string
	failOpen       bool
	staleAfter     time.Duration
	secretFile     string
	issuer         string
	audience       string
	tlsCert        string
	tlsKey         string
	logFormat      string
	logLevel       string
}

func newAgentCommand() *cobra.Command {
	var c agentConfig
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Enforce bans for any service or gateway from a local mirror (forward-auth, Envoy ext_authz, introspection)",
		Long: `Run a local mirror of the authority's bans and revocations and answer, with
no network call per request:
  - forward-auth at http://<--listen>/authz for nginx auth_request, Caddy
    forward_auth and Traefik ForwardAuth (200 with X-Portcullis-User,
    -Session, -Tenant, -Issuer; 401 token problems; 403 bans; 503 stale
    mirror);
  - Envoy external authorization v3 (gRPC) on --ext-authz-listen, for Envoy
    and Istio's CUSTOM provider;
  - RFC 7662 introspection at /introspect (with --introspect-secret-file);
  - /healthz, /readyz (mirror synced and fresh) and /metrics.
--config names a YAML file of routes (method + path prefix -> capability),
public paths and trusted proxies; SIGHUP reloads it without dropping the
mirror, and a bad file keeps the previous configuration (logged). The API key
needs the events:watch scope.`,
		Example: `  portcullis agent --authority authority:7470 --api-key-file /run/secrets/agent.key \
    --ca-file /etc/portcullis/ca.pem --config /etc/portcullis/agent.yaml`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := flagsFromEnv(cmd.Flags()); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			return runAgent(ctx, c, cmd.ErrOrStderr(), hup, nil)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.authority, "authority", "127.0.0.1:7470", "the authority's gRPC address, or several replicas: host:port[,host:port]")
	f.StringVar(&c.apiKeyFile, "api-key-file", "", "file holding the API key (scope events:watch)")
	f.StringVar(&c.caFile, "ca-file", "", "PEM file of the CA that signed the authority's TLS certificate (default: system roots)")
	f.BoolVar(&c.insecure, "insecure", false, "plaintext to a non-loopback authority, and plaintext listeners on non-loopback addresses")
	f.StringVar(&c.listen, "listen", "127.0.0.1:7480", "HTTP listen address: /authz, /introspect, /healthz, /readyz, /metrics")
	f.StringVar(&c.extAuthzListen, "ext-authz-listen", "127.0.0.1:7481", "gRPC listen address of Envoy external authorization v3 (empty: off)")
	f.StringVar(&c.configFile, "config", "", "YAML file: routes, public, trusted_proxies, client_ip_header, device_header (reloaded on SIGHUP)")
	f.BoolVar(&c.failOpen, "fail-open", false, "when the mirror is stale, decide from what it has (logging each request) instead of answering 503")
	f.DurationVar(&c.staleAfter, "stale-after", 30*time.Second, "how long the mirror may go without hearing from the authority before decisions fail closed (503) and /readyz is not ready; above the authority's --checkpoint-interval")
	f.StringVar(&c.secretFile, "introspect-secret-file", "", "file of secrets (one a line) that /introspect callers present as a Bearer token or Basic password (empty: /introspect off)")
	f.StringVar(&c.issuer, "issuer", "portcullis", `the "iss" tokens must carry (the authority's --issuer)`)
	f.StringVar(&c.audience, "audience", "portcullis", `the "aud" tokens must hold (the authority's --audience)`)
	f.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate (chain) of both listeners; reloaded when the file changes")
	f.StringVar(&c.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&c.logFormat, "log-format", "json", "log format: json or text")
	f.StringVar(&c.logLevel, "log-level", "info", "log level: debug (every refusal), info, warn, error")
	return cmd
}

// agentListening reports the listeners' addresses once they are open (for
// tests, which listen on port 0).
type agentListening func(httpAddr, extAuthzAddr string, a *agent.Agent)

// runAgent runs the agent until ctx ends; every value on hup reloads
// --config.
func runAgent(ctx context.Context, c agentConfig, logOut io.Writer, hup <-chan os.Signal, listening agentListening) error {
	log, err := newLogger(logOut, c.logFormat, c.logLevel)
	if err != nil {
		return err
	}
	if c.apiKeyFile == "" {
		return usageError{errors.New("--api-key-file is required (an API key with scope events:watch)")}
	}
	if err := tlsFlagsError(c.tlsCert, c.tlsKey, ""); err != nil {
		return err
	}
	cfg := agent.Config{}
	if c.configFile != "" {
		if cfg, err = agent.LoadConfig(c.configFile); err != nil {
			return usageError{fmt.Errorf("--config: %w", err)}
		}
	}
	var secrets []string
	if c.secretFile != "" {
		if secrets, err = readLines(c.secretFile); err != nil || len(secrets) == 0 {
			return usageError{fmt.Errorf("--introspect-secret-file %s: no secret in it (%v)", c.secretFile, err)}
		}
	}
	cl, err := c.dialAuthority()
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := preflight(ctx, cl, log); err != nil {
		return err
	}
	mirror := client.NewMirror(cl, client.MirrorOptions{
		Issuer: c.issuer, Audience: c.audience, StaleAfter: c.staleAfter, FailOpen: c.failOpen, Logger: log,
		Identity: client.MirrorIdentity{Service: "portcullis-agent"},
	})
	a, err := agent.New(mirror, agent.Options{Config: cfg, StaleAfter: c.staleAfter, IntrospectSecrets: secrets,
		Issuer: c.issuer, Audience: c.audience, Logger: log})
	if err != nil {
		return usageError{err}
	}
	httpLis, grpcLis, serverOpts, err := c.listeners(log)
	if err != nil {
		return err
	}
	mctx, stopMirror := context.WithCancel(context.WithoutCancel(ctx))
	mirrorDone := make(chan struct{})
	go func() { defer close(mirrorDone); _ = mirror.Run(mctx) }()
	defer func() { stopMirror(); <-mirrorDone }()

	hs := &http.Server{Handler: a.Handler(), ConnContext: agent.ConnContext, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(httpLis) }()
	var gs *grpc.Server
	extAddr := ""
	if grpcLis != nil {
		gs = grpc.NewServer(serverOpts...)
		a.RegisterExtAuthz(gs)
		go func() { errc <- gs.Serve(grpcLis) }()
		extAddr = grpcLis.Addr().String()
	}
	log.Info("portcullis agent listening", "http", httpLis.Addr().String(), "ext_authz", extAddr, "authority", c.authority,
		"config", c.configFile, "fail_open", c.failOpen, "stale_after", c.staleAfter)
	if listening != nil {
		listening(httpLis.Addr().String(), extAddr, a)
	}
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-errc:
			runErr = err
			break loop
		case <-hup:
			c.reload(a, log)
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	if gs != nil {
		gs.GracefulStop()
	}
	return runErr
}

// reload re-reads --config; a file that does not load or validate leaves
// the running configuration in place, and says why.
func (c agentConfig) reload(a *agent.Agent, log *slog.Logger) {
	if c.configFile == "" {
		log.Info("SIGHUP: no --config to reload")
		return
	}
	cfg, err := agent.LoadConfig(c.configFile)
	if err == nil {
		err = a.Reload(cfg)
	}
	if err != nil {
		log.Error("SIGHUP: the configuration does not load; keeping the previous one", "config", c.configFile, "error", err)
		return
	}
	log.Info("SIGHUP: configuration reloaded", "config", c.configFile, "routes", len(cfg.Routes), "public", len(cfg.Public))
}

// preflight asks the authority for its revision once, so that a refused
// API key stops the agent at start rather than leaving it refusing every
// request; an unreachable authority is only logged (the mirror retries,
// and /readyz says not ready until it has synced).
func preflight(ctx context.Context, cl *client.Client, log *slog.Logger) error {
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := cl.Events.GetRevision(pctx, &pb.GetRevisionRequest{})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, client.ErrAPIKeyInvalid), errors.Is(err, client.ErrPermissionDenied):
		return fmt.Errorf("the authority refuses the API key of --api-key-file: %w", err)
	}
	log.Warn("the authority does not answer yet; the mirror keeps trying (/readyz: not ready)", "error", err)
	return nil
}

// dialAuthority connects as the CLI does (dialAuthority in cli_common.go).
func (c agentConfig) dialAuthority() (*client.Client, error) {
	key, err := os.ReadFile(c.apiKeyFile)
	if err != nil {
		return nil, usageError{fmt.Errorf("--api-key-file: %w", err)}
	}
	return dialAuthority(c.authority, strings.TrimSpace(string(key)), c.caFile, c.insecure)
}

// listeners opens the HTTP listener and, unless --ext-authz-listen is
// empty, the ext_authz one: TLS with --tls-cert, else plaintext, which off
// loopback needs --insecure (as `serve`).
func (c agentConfig) listeners(log *slog.Logger) (httpLis, grpcLis net.Listener, opts []grpc.ServerOption, err error) {
	var httpTLS *tls.Config
	if c.tlsCert != "" {
		r, err := newCertReloader(c.tlsCert, c.tlsKey, "", log)
		if err != nil {
			return nil, nil, nil, usageError{err}
		}
		httpTLS = r.config(false, "h2", "http/1.1")
		opts = append(opts, grpc.Creds(credentials.NewTLS(r.config(false, "h2"))))
	} else {
		if err := checkPlaintext("listen", c.listen, c.insecure, log); err != nil {
			return nil, nil, nil, err
		}
		if c.extAuthzListen != "" {
			if err := checkPlaintext("ext-authz-listen", c.extAuthzListen, c.insecure, log); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	if httpLis, err = net.Listen("tcp", c.listen); err != nil {
		return nil, nil, nil, fmt.Errorf("--listen: %w", err)
	}
	if httpTLS != nil {
		httpLis = tls.NewListener(httpLis, httpTLS)
	}
	if c.extAuthzListen != "" {
		if grpcLis, err = net.Listen("tcp", c.extAuthzListen); err != nil {
			httpLis.Close()
			return nil, nil, nil, fmt.Errorf("--ext-authz-listen: %w", err)
		}
	}
	return httpLis, grpcLis, opts, nil
}

// readLines returns the non-empty lines of a file, trimmed.
func readLines(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out, nil
}
