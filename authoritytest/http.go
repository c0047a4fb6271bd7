package authoritytest

import (
	"net/http"

	"github.com/portcullis-dev/portcullis/server"
)

// HTTPHandler is the running instance's HTTP handler (health, metrics,
// JWKS and, with server.WithConsole, the operator console), for an
// httptest.Server. It serves the instance running now: after Restart, ask
// again.
func (a *Authority) HTTPHandler(opts ...server.HTTPOption) http.Handler {
	return a.running("HTTPHandler").srv.HTTPHandler(opts...)
}
