package server

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/receiver"
	"github.com/portcullis-dev/portcullis/ssf"
)

// maxPushBody bounds a pushed SET.
const maxPushBody = 64 << 10

// registerSSFReceiver adds the Shared Signals push endpoint (RFC 8935):
// POST /ssf/receive/{transmitter_id} with one SET as
// application/secevent+jwt and the Authorization this authority gave the
// transmitter when it created the stream. It answers 202 when the SET was
// applied; 400 with {"err","description"} (plus reason and message) when
// it was refused, nothing applied; 401 for a wrong Authorization.
func (s *Server) registerSSFReceiver(mux *http.ServeMux) {
	mux.HandleFunc("POST /ssf/receive/{transmitter_id}", s.serveSSFPush)
}

func (s *Server) serveSSFPush(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("transmitter_id")
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != ssf.ContentType {
		s.writeSETError(w, r, fmt.Errorf("%w: content type %.64q, want %s", receiver.ErrSETInvalid, r.Header.Get("Content-Type"), ssf.ContentType))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPushBody+1))
	if err != nil {
		s.writeSETError(w, r, fmt.Errorf("%w: reading the body: %v", receiver.ErrSETInvalid, err))
		return
	}
	if len(body) > maxPushBody {
		s.writeSETError(w, r, fmt.Errorf("%w: larger than %d bytes", receiver.ErrSETInvalid, maxPushBody))
		return
	}
	err = s.signalReceiver().Receive(r.Context(), id, r.Header.Get("Authorization"), body)
	if errors.Is(err, receiver.ErrPushUnauthorized) {
		s.denied.record(r.Context(), authority.Actor{Addr: r.RemoteAddr, Channel: authority.ChannelSignals}, remoteIP(r),
			"POST /ssf/receive/"+id, "wrong push authorization", false)
	}
	if err != nil {
		s.writeSETError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// writeSETError answers a refused push: RFC 8935 §2.3's err code for a
// refused SET; 401 for a wrong Authorization.
func (s *Server) writeSETError(w http.ResponseWriter, r *http.Request, err error) {
	s.writeHTTPError(w, r, err, func(reason pb.ErrorReason, body *HTTPError) int {
		switch reason {
		case pb.ErrorReason_API_KEY_INVALID:
			w.Header().Set("WWW-Authenticate", "Bearer")
			return http.StatusUnauthorized
		case pb.ErrorReason_SET_INVALID, pb.ErrorReason_SET_KEY_INVALID, pb.ErrorReason_SET_ISSUER_INVALID,
			pb.ErrorReason_SET_AUDIENCE_INVALID, pb.ErrorReason_SET_REPLAYED, pb.ErrorReason_INVALID_ARGUMENT:
			body.Err, body.Description = receiver.ErrCode(err), body.Message
			return http.StatusBadRequest
		}
		return 0
	})
}
