package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/portcullis-dev/portcullis/clientip"
	"github.com/portcullis-dev/portcullis/rpcerr"
)

// Handler serves the agent's HTTP listener:
//   - /authz: forward-auth for nginx auth_request, Caddy forward_auth and
//     Traefik ForwardAuth (any method);
//   - /introspect: RFC 7662 token introspection, when Options gave
//     secrets;
//   - /healthz (the process answers), /readyz (Ready), /metrics.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	if len(a.secrets) > 0 {
		mux.HandleFunc("POST /introspect", a.serveIntrospect)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ok, why := a.Ready(); !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready:", why)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{}))
	// /authz is every request of the gateway: it skips the mux's pattern
	// matching.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/authz" {
			a.serveAuthz(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

type peerKey struct{}

// ConnContext is for http.Server.ConnContext: it parses a connection's
// peer address once, rather than the RemoteAddr string of each request on
// it (a gateway keeps its connections to the agent alive).
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, peerKey{}, clientip.FromNetAddr(c.RemoteAddr()))
}

// peerOf returns the address of the peer that sent r.
func peerOf(r *http.Request) netip.Addr {
	if a, ok := r.Context().Value(peerKey{}).(netip.Addr); ok {
		return a
	}
	return clientip.FromString(r.RemoteAddr)
}

// The headers a gateway names the original request in: nginx's
// (configured with proxy_set_header), and the ones Caddy and Traefik set
// themselves.
const (
	headerOriginalMethod  = "X-Original-Method"
	headerOriginalURI     = "X-Original-Uri"
	headerForwardedMethod = "X-Forwarded-Method"
	headerForwardedURI    = "X-Forwarded-Uri"
)

// serveAuthz answers a forward-auth subrequest: 200 with the identity
// headers, or the refusal's status with its reason in headers and a JSON
// body.
func (a *Agent) serveAuthz(w http.ResponseWriter, r *http.Request) {
	start := startTimer()
	var d Decision
	method, uri, err := originalRequest(r)
	if err != nil {
		d.Err = err
	} else {
		d = decide(r.Context(), a, a.cfg.Load(), method, uri, peerOf(r), canonicalHeaders(r.Header))
	}
	if d.Err == nil {
		// The identity headers, by canonical name and with values
		// rendered once per session (admitted.go): no canonicalization,
		// no allocation.
		ans := publicAnswer
		if d.Session != nil {
			ans = a.admitted.get(d.Session)
		}
		h := w.Header()
		for i, name := range IdentityHeaders {
			h[name] = ans.values[i]
		}
		w.WriteHeader(http.StatusOK)
		a.metrics.observe(doorForwardAuth, d.Public, nil, start)
		return
	}
	ref := refusalOf(d.Err)
	a.metrics.observe(doorForwardAuth, d.Public, &ref, start)
	a.log.DebugContext(r.Context(), "portcullis agent refused a request", "door", "forward_auth", "method", method, "uri", uri,
		"client_ip", d.Input.ClientIP, "device_id", d.Input.DeviceID, "capability", d.Input.Capability, "error", d.Err)
	writeRefusal(w, ref)
}

// writeRefusal writes a refusal: its status, the reason (and ban) in
// headers that a gateway can copy into its own error page, and the JSON
// body.
func writeRefusal(w http.ResponseWriter, ref refusal) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set(HeaderReason, ref.Reason)
	if ref.BanID != "" {
		h.Set(HeaderBanID, ref.BanID)
		h.Set(HeaderExpireTime, ref.ExpireTime)
	}
	if ref.HTTPStatus == http.StatusUnauthorized {
		// RFC 6750: what a client of a bearer-token API looks for.
		h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	w.WriteHeader(ref.HTTPStatus)
	_ = json.NewEncoder(w).Encode(ref)
}

// originalRequest returns the method and URI of the request the gateway
// asks about. Either convention may be used; a header given twice, or both
// conventions disagreeing, is refused: a gateway sets its own header, so
// the other one (or a second value) came from the client, which must not
// choose the path that is decided (a public one, say).
func originalRequest(r *http.Request) (method, uri string, err error) {
	method, err = oneOf(r, headerOriginalMethod, headerForwardedMethod)
	if err != nil {
		return "", "", err
	}
	if method == "" {
		method = r.Method // nginx's subrequest keeps the original method
	}
	uri, err = oneOf(r, headerOriginalURI, headerForwardedURI)
	if err != nil {
		return "", "", err
	}
	if uri == "" {
		return "", "", fmt.Errorf("%w: no %s (nginx: proxy_set_header X-Original-URI $request_uri) or %s (Caddy, Traefik) header names the request to decide",
			rpcerr.ErrInvalidArgument, headerOriginalURI, headerForwardedURI)
	}
	return method, uri, nil
}

func oneOf(r *http.Request, a, b string) (string, error) {
	va, vb := r.Header[a], r.Header[b] // a and b are canonical
	if len(va) > 1 || len(vb) > 1 {
		return "", fmt.Errorf("%w: %s or %s given more than once", rpcerr.ErrInvalidArgument, a, b)
	}
	switch {
	case len(va) == 1 && len(vb) == 1 && va[0] != vb[0]:
		return "", fmt.Errorf("%w: %s and %s disagree", rpcerr.ErrInvalidArgument, a, b)
	case len(va) == 1:
		return va[0], nil
	case len(vb) == 1:
		return vb[0], nil
	}
	return "", nil
}
