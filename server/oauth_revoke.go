package server

import (
	"errors"
	"mime"
	"net/http"
	"strconv"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/rpcerr"
)

// oauthRevokePath is the RFC 7009 revocation endpoint.
const oauthRevokePath = "/oauth2/revoke"

// oauthRevokeMethod names the endpoint in call.denied audit records, as a
// gRPC method name does for gRPC calls.
const oauthRevokeMethod = "POST " + oauthRevokePath

// oauthRevokeMaxBody bounds a revocation request's form: a token and a
// hint are far below it.
const oauthRevokeMaxBody = 64 << 10

// RevisionHeader carries, on a revocation that revoked a session, the
// store revision of the write: a caller that wants every mirror to refuse
// the session waits for it (Mirror.WaitRevision, or the Wait options of
// the gRPC writes). RFC 7009 clients ignore it.
const RevisionHeader = "Portcullis-Revision"

// registerOAuthRevoke serves RFC 7009 token revocation on mux.
func (s *Server) registerOAuthRevoke(mux *http.ServeMux) {
	// Failed client authentications per address, bounded as gRPC's are
	// (Limits.FailedAuthPerSecond), in buckets of their own.
	failures := newKeyedLimiter("failed_auth", s.opts.Limits.FailedAuthPerSecond, s.opts.Limits.FailedAuthBurst)
	// Every method, so that the others get this endpoint's JSON 405
	// rather than the mux's plain-text one.
	mux.HandleFunc(oauthRevokePath, func(w http.ResponseWriter, r *http.Request) {
		s.serveOAuthRevoke(w, r, failures)
	})
}

// serveOAuthRevoke is RFC 7009 §2: the client (an API key with scope
// sessions:write, as Bearer or as the Basic password) posts a token, and
// the session it belongs to is revoked (authority.RevokeToken). Success is
// 200 with an empty body whether or not the token named anything (§2.2);
// errors are JSON with RFC 6749 §5.2's "error" next to Portcullis's
// reason and message.
func (s *Server) serveOAuthRevoke(w http.ResponseWriter, r *http.Request, failures *keyedLimiter) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.writeHTTPError(w, r, rpcerr.New(pb.ErrorReason_INVALID_ARGUMENT,
			r.Method+" is not allowed here: token revocation is a POST (RFC 7009 §2.1)", nil),
			oauthErrorCode("invalid_request", http.StatusMethodNotAllowed))
		return
	}
	key, ok := s.oauthClient(w, r, failures)
	if !ok {
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		s.oauthInvalidRequest(w, r, "", `send the parameters as "Content-Type: application/x-www-form-urlencoded" (RFC 7009 §2.1)`)
		return
	}
	if q := r.URL.Query(); q.Has("token") {
		// A token in the URL ends up in access logs and proxies' caches.
		s.oauthInvalidRequest(w, r, "token", "send the token in the request body, never in the URL")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, oauthRevokeMaxBody)
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.oauthInvalidRequest(w, r, "", "the request body is larger than "+strconv.Itoa(oauthRevokeMaxBody)+" bytes")
			return
		}
		s.oauthInvalidRequest(w, r, "", "the request body is not a valid form: "+err.Error())
		return
	}
	for _, name := range []string{"token", "token_type_hint"} {
		// RFC 6749 §3.1: a parameter is sent at most once.
		if len(r.PostForm[name]) > 1 {
			s.oauthInvalidRequest(w, r, name, name+" is sent more than once")
			return
		}
	}
	actor := authority.Actor{Name: key.Name, Addr: r.RemoteAddr, Channel: authority.ChannelHTTP}
	revoked, rev, err := s.auth.RevokeToken(r.Context(), actor, r.PostForm.Get("token"), r.PostForm.Get("token_type_hint"))
	if err != nil {
		s.writeHTTPError(w, r, err, oauthRevokeProtocol)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if revoked {
		w.Header().Set(RevisionHeader, strconv.FormatInt(rev, 10))
	}
	w.WriteHeader(http.StatusOK)
}

// oauthClient authenticates the client of an OAuth request: the API key
// as "Authorization: Bearer <key>", or as the password of HTTP Basic
// (RFC 6749 §2.3.1, form-encoded; the username is ignored: the key names
// itself). It must grant sessions:write. A refused client is audited like
// a refused gRPC call (call.denied) and answered 401 invalid_client with
// the challenge of the scheme it used (§5.2), or of both when it sent
// none. An address that failed too often (failures) gets 429
// RESOURCE_EXHAUSTED instead, counted in the denied-call summary, as over
// gRPC.
func (s *Server) oauthClient(w http.ResponseWriter, r *http.Request, failures *keyedLimiter) (storage.APIKey, bool) {
	key, _, ok := s.apiKey(w, r, httpKeyCheck{method: oauthRevokeMethod, scope: authority.ScopeSessionsWrite,
		channel: authority.ChannelHTTP, basic: true, failures: failures,
		// RFC 6749 §5.2 has no error for a client that authenticated but
		// may not use the endpoint other than invalid_client.
		protocol: oauthErrorCode("invalid_client", http.StatusUnauthorized)})
	return key, ok
}

// oauthInvalidRequest answers 400 invalid_request; field, when set, goes
// into the ErrorInfo metadata as the domain's field errors do.
func (s *Server) oauthInvalidRequest(w http.ResponseWriter, r *http.Request, field, msg string) {
	var meta map[string]string
	if field != "" {
		meta = map[string]string{rpcerr.MetaField: field}
	}
	s.writeHTTPError(w, r, rpcerr.New(pb.ErrorReason_INVALID_ARGUMENT, msg, meta), oauthErrorCode("invalid_request", http.StatusBadRequest))
}

// oauthErrorCode is a protocol hook that sets RFC 6749 §5.2's error (and
// error_description, the message) and the HTTP status.
func oauthErrorCode(code string, status int) func(pb.ErrorReason, *HTTPError) int {
	return func(_ pb.ErrorReason, b *HTTPError) int {
		b.Error, b.ErrorDescription = code, b.Message
		return status
	}
}

// oauthRevokeProtocol is the protocol hook of RevokeToken's errors: bad
// input is invalid_request; anything else (the store unavailable: 503,
// which RFC 7009 §2.2.1 says to retry) keeps its status and has no OAuth
// error code.
func oauthRevokeProtocol(reason pb.ErrorReason, b *HTTPError) int {
	if reason == pb.ErrorReason_INVALID_ARGUMENT {
		b.Error, b.ErrorDescription = "invalid_request", b.Message
	}
	return 0
}
