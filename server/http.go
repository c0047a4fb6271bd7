package server

import (
	"net/http"

	"google.golang.org/grpc/health/grpc_health_v1"
)

// HTTPHandler serves /healthz (the process is up), /readyz (the gRPC
// health service reports SERVING: false while shutting down), /metrics
// (Prometheus, see Metrics) and /.well-known/jwks.json (the verification
// keys, see serveJWKS).
func (s *Server) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET /.well-known/jwks.json", s.serveJWKS)
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
	return mux
}
