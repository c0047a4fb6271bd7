package server

import (
	"context"
	"log/slog"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

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

// routineMethods are logged at debug level when they succeed: every mirror
// calls ReportProgress after every change it applies, so at info level
// 1,000 mirrors would write 1,000 lines per ban. Their failures keep their
// level.
var routineMethods = map[string]bool{
	pb.EventService_ReportProgress_FullMethodName: true,
}

// callLevel is the level of a call's log line, whose fields are given.
func callLevel(ctx context.Context, lvl slog.Level, fields []any) slog.Level {
	if m, _ := grpc.Method(ctx); routineMethods[m] && lvl == slog.LevelInfo {
		for i := 0; i+1 < len(fields); i += 2 {
			if fields[i] == "grpc.code" && fields[i+1] == codes.OK.String() {
				return slog.LevelDebug
			}
		}
	}
	return lvl
}
