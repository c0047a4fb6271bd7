package server

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/rpcerr"
)

// httpKeyCheck is how an HTTP endpoint authenticates its callers with API
// keys, as the gRPC authenticator does (auth.go): a refusal is audited
// (call.denied), and an address whose credentials failed too often gets
// 429 RESOURCE_EXHAUSTED instead, counted in the denied-call summary.
type httpKeyCheck struct {
	method  string // the endpoint, as audited
	scope   string // the scope the key must grant
	channel string // the actor's channel
	// basic also accepts the key as the password of HTTP Basic (RFC 6749
	// §2.3.1, form-encoded; the username is ignored: the key names
	// itself), besides "Authorization: Bearer <key>".
	basic    bool
	failures *keyedLimiter
	// protocol, when set, writes a refusal in the endpoint's protocol
	// (writeHTTPError's hook); a 401 carries the challenge of the scheme
	// the caller used, or of every scheme accepted when it used none.
	protocol func(pb.ErrorReason, *HTTPError) int
}

// apiKey returns the caller's key and its actor, or answers the refusal
// and returns false.
func (s *Server) apiKey(w http.ResponseWriter, r *http.Request, c httpKeyCheck) (storage.APIKey, authority.Actor, bool) {
	actor := authority.Actor{Addr: r.RemoteAddr, Channel: c.channel}
	scheme, secret := credential(r, c.basic)
	// refuse answers a refused caller; failed says the credential itself
	// failed (counted against the address), not only its scope.
	refuse := func(why string, failed bool, err error) (storage.APIKey, authority.Actor, bool) {
		ip := remoteIP(r)
		limited := failed && !c.failures.allow(ip)
		s.denied.record(r.Context(), actor, ip, c.method, why, limited)
		if limited {
			s.writeHTTPError(w, r, limitError("failed_auth_rate",
				"too many failed authentications from this address; retry later with a valid API key"), nil)
			return storage.APIKey{}, actor, false
		}
		s.writeHTTPError(w, r, err, func(reason pb.ErrorReason, b *HTTPError) int {
			code := 0
			if c.protocol != nil {
				code = c.protocol(reason, b)
			}
			if e, ok := rpcerr.Lookup(reason); ok && code == 0 {
				code = httpStatus(e.Code)
			}
			if code == http.StatusUnauthorized {
				challenge(w, scheme, c.basic)
			}
			return code
		})
		return storage.APIKey{}, actor, false
	}
	if secret == "" {
		how := `send an API key as "Authorization: Bearer <key>"`
		if c.basic {
			how += ", or as the password of HTTP Basic"
		}
		return refuse("no client credential", true, rpcerr.New(pb.ErrorReason_API_KEY_INVALID, how, nil))
	}
	key, err := s.auth.Authenticate(r.Context(), secret)
	if errors.Is(err, authority.ErrAPIKeyInvalid) {
		return refuse("invalid API key", true, err)
	} else if err != nil {
		s.writeHTTPError(w, r, err, nil)
		return storage.APIKey{}, actor, false
	}
	actor.Name = key.Name
	if !authority.HasScope(key, c.scope) {
		return refuse("missing scope "+c.scope, false, rpcerr.New(pb.ErrorReason_PERMISSION_DENIED,
			"API key "+strconv.Quote(key.Name)+" lacks scope "+strconv.Quote(c.scope)+" needed by "+c.method, nil))
	}
	return key, actor, true
}

// credential returns the scheme and secret of r's Authorization: Bearer
// (the scheme compared case-insensitively, RFC 7235), or, with basic, the
// password of HTTP Basic.
func credential(r *http.Request, basic bool) (scheme, secret string) {
	if _, pass, ok := r.BasicAuth(); ok && basic {
		if p, err := url.QueryUnescape(pass); err == nil {
			pass = p
		}
		return "Basic", pass
	}
	const bearer = "Bearer "
	if h := r.Header.Get("Authorization"); len(h) > len(bearer) && strings.EqualFold(h[:len(bearer)], bearer) {
		return "Bearer", strings.TrimSpace(h[len(bearer):])
	}
	return "", ""
}

// challenge sets the WWW-Authenticate of a 401: the scheme the caller
// used, or every scheme accepted when it used none.
func challenge(w http.ResponseWriter, scheme string, basic bool) {
	switch {
	case scheme != "":
		w.Header().Set("WWW-Authenticate", scheme+` realm="portcullis"`)
	case basic:
		w.Header().Add("WWW-Authenticate", `Basic realm="portcullis"`)
		fallthrough
	default:
		w.Header().Add("WWW-Authenticate", `Bearer realm="portcullis"`)
	}
}

// remoteIP is the address part of r.RemoteAddr, which the denied-call
// summaries count by.
func remoteIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}
