package server

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/transmitter"
	"github.com/portcullis-dev/portcullis/ssf"
)

// WithTransmitter serves the Shared Signals transmitter t: its
// configuration document, stream management and poll endpoints
// (registerSSFTransmitter).
func WithTransmitter(t *transmitter.Transmitter) HTTPOption {
	return func(o *httpOptions) { o.transmitter = t }
}

// maxSSFBody bounds a request body of the SSF endpoints.
const maxSSFBody = 1 << 20

// ssfTransmitter serves the transmitter's HTTP API (SSF 1.0 §7, §8;
// RFC 8936 poll). The handlers only decode, authenticate and encode: the
// rules are the transmitter's.
type ssfTransmitter struct {
	s *Server
	t *transmitter.Transmitter
	// failures limits failed authentications per address, as over gRPC.
	failures *keyedLimiter
}

// registerSSFTransmitter adds the transmitter's routes to mux.
func (s *Server) registerSSFTransmitter(mux *http.ServeMux, t *transmitter.Transmitter) {
	h := &ssfTransmitter{s: s, t: t,
		failures: newKeyedLimiter("failed_auth", s.opts.Limits.FailedAuthPerSecond, s.opts.Limits.FailedAuthBurst)}
	mux.HandleFunc("GET /.well-known/ssf-configuration", h.configuration)
	mux.HandleFunc("POST /ssf/streams", h.auth(h.create))
	mux.HandleFunc("GET /ssf/streams", h.auth(h.get))
	mux.HandleFunc("PATCH /ssf/streams", h.auth(h.update(false)))
	mux.HandleFunc("PUT /ssf/streams", h.auth(h.update(true)))
	mux.HandleFunc("DELETE /ssf/streams", h.auth(h.delete))
	mux.HandleFunc("GET /ssf/status", h.auth(h.status))
	mux.HandleFunc("POST /ssf/status", h.auth(h.setStatus))
	mux.HandleFunc("POST /ssf/subjects:add", h.auth(h.subject(true)))
	mux.HandleFunc("POST /ssf/subjects:remove", h.auth(h.subject(false)))
	mux.HandleFunc("POST /ssf/verify", h.auth(h.verify))
	mux.HandleFunc("POST /ssf/poll/{stream_id}", h.auth(h.poll))
}

type ssfHandler func(w http.ResponseWriter, r *http.Request, c transmitter.Caller)

// auth checks the bearer API key for scope signals, as the gRPC
// authenticator does: a refusal is audited (call.denied), and an address
// whose credentials failed too often gets 429 RESOURCE_EXHAUSTED instead,
// counted in the denied-call summary.
func (h *ssfTransmitter) auth(next ssfHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, actor, ok := h.s.apiKey(w, r, httpKeyCheck{method: r.Method + " " + r.URL.Path, scope: authority.ScopeSignals,
			channel: authority.ChannelSignals, failures: h.failures})
		if !ok {
			return
		}
		next(w, r, transmitter.Caller{KeyID: key.ID, KeyName: key.Name,
			Admin: authority.HasScope(key, authority.ScopeAdmin), Actor: actor})
	}
}

// decode reads a JSON body into each of vs (the SSF object, then this
// transmitter's extension fields).
func (h *ssfTransmitter) decode(w http.ResponseWriter, r *http.Request, vs ...any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSSFBody))
	if err == nil {
		for _, v := range vs {
			if err = json.Unmarshal(body, v); err != nil {
				break
			}
		}
	}
	if err != nil {
		h.s.writeHTTPError(w, r, &authority.FieldError{Field: "body", Msg: "not the expected JSON object: " + err.Error()}, nil)
		return false
	}
	return true
}

func (h *ssfTransmitter) reply(w http.ResponseWriter, r *http.Request, code int, v any, err error) {
	if err != nil {
		h.s.writeHTTPError(w, r, err, nil)
		return
	}
	if v == nil {
		w.WriteHeader(code)
		return
	}
	writeJSONStatus(w, code, v)
}

func (h *ssfTransmitter) configuration(w http.ResponseWriter, r *http.Request) {
	writeJSONStatus(w, http.StatusOK, h.t.Configuration())
}

// extension is this transmitter's addition to a stream configuration.
type extension struct {
	SigningAlg string `json:"signing_alg"`
}

func (h *ssfTransmitter) input(w http.ResponseWriter, r *http.Request) (transmitter.StreamInput, bool) {
	var in transmitter.StreamInput
	var ext extension
	ok := h.decode(w, r, &in.Config, &ext)
	in.SigningAlg = ext.SigningAlg
	return in, ok
}

func (h *ssfTransmitter) create(w http.ResponseWriter, r *http.Request, c transmitter.Caller) {
	if in, ok := h.input(w, r); ok {
		out, err := h.t.CreateStream(r.Context(), c, in)
		h.reply(w, r, http.StatusCreated, out, err)
	}
}

func (h *ssfTransmitter) get(w http.ResponseWriter, r *http.Request, c transmitter.Caller) {
	if id := r.URL.Query().Get("stream_id"); id != "" {
		out, err := h.t.GetStream(r.Context(), c, id)
		h.reply(w, r, http.StatusOK, out, err)
		return
	}
	out, err := h.t.ListStreams(r.Context(), c)
	h.reply(w, r, http.StatusOK, out, err)
}

func (h *ssfTransmitter) update(replace bool) ssfHandler {
	return func(w http.ResponseWriter, r *http.Request, c transmitter.Caller) {
		if in, ok := h.input(w, r); ok {
			out, err := h.t.UpdateStream(r.Context(), c, in, replace)
			h.reply(w, r, http.StatusOK, out, err)
		}
	}
}

func (h *ssfTransmitter) delete(w http.ResponseWriter, r *http.Request, c transmitter.Caller) {
	err := h.t.DeleteStream(r.Context(), c, r.URL.Query().Get("stream_id"))
	h.reply(w, r, http.StatusNoContent, nil, err)
}

func (h *ssfTransmitter) status(w http.ResponseWriter, r *http.Request, c transmitter.Caller) {
	out, err := h.t.Status(r.Context(), c, r.URL.Query().Get("stream_id"))
	h.reply(w, r, http.StatusOK, out, err)
}

func (h *ssfTransmitter) setStatus(w http.ResponseWriter, r *http.Request, c transmitter.Caller) {
	var in ssf.StreamStatus
	if h.decode(w, r, &in) {
		out, err := h.t.SetStatus(r.Context(), c, in)
		h.reply(w, r, http.StatusOK, out, err)
	}
}

func (h *ssfTransmitter) subject(add bool) ssfHandler {
	return func(w http.ResponseWriter, r *http.Request, c transmitter.Caller) {
		var in ssf.SubjectRequest
		if !h.decode(w, r, &in) {
			return
		}
		if add {
			h.reply(w, r, http.StatusOK, nil, h.t.AddSubject(r.Context(), c, in))
		} else {
			h.reply(w, r, http.StatusNoContent, nil, h.t.RemoveSubject(r.Context(), c, in))
		}
	}
}

func (h *ssfTransmitter) verify(w http.ResponseWriter, r *http.Request, c transmitter.Caller) {
	var in ssf.VerificationRequest
	if h.decode(w, r, &in) {
		h.reply(w, r, http.StatusNoContent, nil, h.t.Verify(r.Context(), c, in))
	}
}

func (h *ssfTransmitter) poll(w http.ResponseWriter, r *http.Request, c transmitter.Caller) {
	var in ssf.PollRequest
	if h.decode(w, r, &in) {
		out, err := h.t.Poll(r.Context(), c, r.PathValue("stream_id"), in)
		h.reply(w, r, http.StatusOK, out, err)
	}
}
