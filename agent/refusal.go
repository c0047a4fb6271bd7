package agent

import (
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/portcullis-dev/portcullis/client"
	"github.com/portcullis-dev/portcullis/rpcerr"
)

// refusal is a refused decision as every front door renders it: the gRPC
// status the interceptors would answer (client.Status, the one mapping of
// errors to statuses on the service side), its HTTP status, and the
// ErrorInfo fields. It is also the JSON body of a refusal.
type refusal struct {
	// HTTPStatus: 401 for token problems, 403 for bans, 503 for a stale
	// mirror, 400 for a request the agent cannot read, 500 otherwise.
	HTTPStatus int `json:"code"`
	// Reason is the ErrorInfo reason (USER_BANNED, TOKEN_EXPIRED, ...).
	Reason     string `json:"reason"`
	Message    string `json:"message"`
	BanID      string `json:"ban_id,omitempty"`
	ExpireTime string `json:"expire_time,omitempty"` // RFC 3339; absent when permanent
	Capability string `json:"capability,omitempty"`

	status *status.Status
}

// httpStatus maps the gRPC codes a decision can end with onto HTTP, as
// grpc-gateway and Envoy's grpc_json_transcoder map them.
var httpStatus = map[codes.Code]int{
	codes.Unauthenticated:    http.StatusUnauthorized,
	codes.PermissionDenied:   http.StatusForbidden,
	codes.Unavailable:        http.StatusServiceUnavailable,
	codes.InvalidArgument:    http.StatusBadRequest,
	codes.ResourceExhausted:  http.StatusTooManyRequests,
	codes.FailedPrecondition: http.StatusBadRequest,
}

// refusalOf renders a decision's error.
func refusalOf(err error) refusal {
	st := status.Convert(client.Status(err))
	r := refusal{HTTPStatus: http.StatusInternalServerError, Message: st.Message(), status: st}
	if h, ok := httpStatus[st.Code()]; ok {
		r.HTTPStatus = h
	}
	if info := rpcerr.Parse(st).Info; info != nil {
		r.Reason = info.GetReason()
		md := info.GetMetadata()
		r.BanID, r.ExpireTime, r.Capability = md[rpcerr.MetaBanID], md[rpcerr.MetaExpireTime], md[rpcerr.MetaCapability]
	}
	return r
}

// Status is the gRPC status of the refusal (with its ErrorInfo), as the
// interceptors answer it; ext_authz carries it in CheckResponse.status.
func (r refusal) Status() *status.Status { return r.status }

// Headers the agent sets. The identity headers are set on every allowed
// answer (empty on a public route, and the issuer empty for the
// authority's own tokens), so that a gateway copying them to the upstream
// request overwrites whatever the client sent.
const (
	HeaderUser    = "X-Portcullis-User"
	HeaderSession = "X-Portcullis-Session"
	HeaderTenant  = "X-Portcullis-Tenant"
	// HeaderIssuer is the issuer ("iss") of an external OIDC issuer's
	// token (client.Session.Issuer); empty for the authority's own.
	HeaderIssuer     = "X-Portcullis-Issuer"
	HeaderReason     = "X-Portcullis-Reason"
	HeaderBanID      = "X-Portcullis-Ban-Id"
	HeaderExpireTime = "X-Portcullis-Expire-Time"
)

// IdentityHeaders are the headers an allowed request carries to the
// upstream; a gateway must never pass the client's own.
var IdentityHeaders = [numIdentity]string{HeaderUser, HeaderSession, HeaderTenant, HeaderIssuer}

const numIdentity = 4

// identityLower are IdentityHeaders in lower case, as Envoy names headers.
var identityLower = func() (l [numIdentity]string) {
	for i, n := range IdentityHeaders {
		l[i] = newHName(n).lower
	}
	return l
}()
