package server

import (
	"context"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"google.golang.org/grpc"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// tenantField adds "tenant" to the call's log line (the logging
// interceptor's one line per RPC, with grpc.method, grpc.code,
// grpc.time_ms and caller): the request's tenant_id when it names one,
// otherwise the tenant of the session or ban the response carries (for
// VerifySession, RevokeSession, LiftBan, ...). It runs inside the logging
// interceptor, whose fields it extends.
func tenantField(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if t := tenantOf(req, resp); t != "" {
		logging.AddFields(ctx, logging.Fields{"tenant", t})
	}
	return resp, err
}

func tenantOf(req, resp any) string {
	if r, ok := req.(interface{ GetTenantId() string }); ok && r.GetTenantId() != "" {
		return r.GetTenantId()
	}
	if r, ok := resp.(interface{ GetSession() *pb.Session }); ok && r.GetSession() != nil {
		return r.GetSession().GetTenantId()
	}
	if r, ok := resp.(interface{ GetBan() *pb.Ban }); ok && r.GetBan() != nil {
		return r.GetBan().GetTenantId()
	}
	return ""
}
