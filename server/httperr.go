package server

import (
	"encoding/json"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/rpcerr"
)

// HTTPError is the JSON body of every error the authority's HTTP endpoints
// answer (Shared Signals, OAuth revocation): the same reason and message
// a gRPC caller gets in its google.rpc.ErrorInfo, plus the fields the
// endpoint's own protocol names, which a protocol hook fills in.
type HTTPError struct {
	Reason   string            `json:"reason"`
	Message  string            `json:"message"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// RFC 6749 §5.2 (and so RFC 7009, RFC 7662): "error" and
	// "error_description".
	Error            string `json:"error,omitempty"`
	ErrorDescription string `json:"error_description,omitempty"`
	// RFC 8935 §2.3 (push delivery of SETs): "err" and "description".
	Err         string `json:"err,omitempty"`
	Description string `json:"description,omitempty"`
}

// writeHTTPError answers err the way toStatus would over gRPC: the same
// conversion (so the same reasons and the one place that maps them), then
// the gRPC code's HTTP status. protocol, when given, sets the protocol's
// own fields (and may change the HTTP status, returning a non-zero one).
func (s *Server) writeHTTPError(w http.ResponseWriter, r *http.Request, err error, protocol func(reason pb.ErrorReason, body *HTTPError) int) {
	st, _ := status.FromError(toStatus(r.Context(), s.log, err))
	parsed := rpcerr.Parse(st)
	body := HTTPError{Reason: parsed.Entry.Reason.String(), Message: st.Message(), Metadata: parsed.Info.GetMetadata()}
	code := httpStatus(st.Code())
	if protocol != nil {
		if c := protocol(parsed.Entry.Reason, &body); c != 0 {
			code = c
		}
	}
	writeJSONStatus(w, code, body)
}

// writeJSONStatus writes v as the JSON body with the status code.
func writeJSONStatus(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// httpStatus is the HTTP status of a gRPC code, as gRPC-gateway and
// Google's APIs map them.
func httpStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.InvalidArgument, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.FailedPrecondition:
		return http.StatusConflict
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Canceled:
		return 499 // client closed request
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.Unimplemented:
		return http.StatusNotImplemented
	default:
		return http.StatusInternalServerError
	}
}
