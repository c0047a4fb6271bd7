package server

import (
	"net/http"

	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/portcullis-dev/portcullis/internal/transmitter"
	"github.com/portcullis-dev/portcullis/server/console"
)

// HTTPOption configures HTTPHandler.
type HTTPOption func(*httpOptions)

type httpOptions struct {
	console       bool
	consoleSecure bool
	transmitter   *transmitter.Transmitter // WithTransmitter (ssf_transmitter.go)
}

// WithConsole serves the operator console under /console/ (package
// console); secure says the listener serves TLS, so that its cookies are
// Secure.
func WithConsole(secure bool) HTTPOption {
	return func(o *httpOptions) { o.console, o.consoleSecure = true, secure }
}

// HTTPHandler serves /healthz (the process is up), /readyz (the gRPC
// health service reports SERVING: false while shutting down), /metrics
// (Prometheus, see Metrics), /.well-known/jwks.json (the verification
// keys, see serveJWKS) and /.well-known/openid-configuration (where to find
// them, see serveDiscovery), and, under WithConsole, the console; under
// WithTransmitter, the Shared Signals transmitter (ssf_transmitter.go).
func (s *Server) HTTPHandler(opts ...HTTPOption) http.Handler {
	var o httpOptions
	for _, opt := range opts {
		opt(&o)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET /.well-known/jwks.json", s.serveJWKS)
	mux.HandleFunc("GET /.well-known/openid-configuration", s.serveDiscovery) // discovery.go
	s.registerOAuthRevoke(mux)                                                // POST /oauth2/revoke (RFC 7009), oauth_revoke.go
	s.registerSSFReceiver(mux)                                                // POST /ssf/receive/{transmitter_id} (RFC 8935), ssf_receiver.go
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		resp, err := s.health.Check(r.Context(), &grpc_health_v1.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
			http.Error(w, "not serving", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	if o.transmitter != nil {
		s.registerSSFTransmitter(mux, o.transmitter)
	}
	if o.console {
		c := console.New(console.Config{Authority: s.auth, Fleet: s.fleet, Scope: scopeOf, Closing: s.closing, Secure: o.consoleSecure, Logger: s.log})
		mux.Handle("/console/", c.Handler())
	}
	return mux
}

// scopeOf is the scope the rules table (auth.go) asks of an API key for
// method: the console authorises its pages and actions with it.
func scopeOf(method string) (string, bool) {
	r, ok := rules[method]
	if !ok || r.public || r.refreshToken {
		return "", false
	}
	return r.scope, true
}
