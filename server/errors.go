package server

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

// ErrorDomain is the ErrorInfo domain of every Portcullis error.
const ErrorDomain = "portcullis.dev"

// ReasonString is the ErrorInfo reason of r: its name without the
// "ERROR_REASON_" prefix, e.g. "USER_BANNED".
func ReasonString(r pb.ErrorReason) string {
	return strings.TrimPrefix(r.String(), "ERROR_REASON_")
}

// newStatus builds a status with an ErrorInfo.
func newStatus(c codes.Code, r pb.ErrorReason, msg string, meta map[string]string) error {
	st := status.New(c, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: ReasonString(r), Domain: ErrorDomain, Metadata: meta}); err == nil {
		st = d
	}
	return st.Err()
}

// sentinels maps domain sentinels to their code and reason. The message is
// the error's own text, which the domain writes for the caller.
var sentinels = []struct {
	err    error
	code   codes.Code
	reason pb.ErrorReason
}{
	{authority.ErrInvalidPageToken, codes.InvalidArgument, pb.ErrorReason_ERROR_REASON_INVALID_PAGE_TOKEN},
	{authority.ErrInvalidArgument, codes.InvalidArgument, pb.ErrorReason_ERROR_REASON_INVALID_ARGUMENT},
	{authority.ErrNotFound, codes.NotFound, pb.ErrorReason_ERROR_REASON_NOT_FOUND},
	{authority.ErrTokenExpired, codes.Unauthenticated, pb.ErrorReason_ERROR_REASON_TOKEN_EXPIRED},
	{authority.ErrTokenInvalid, codes.Unauthenticated, pb.ErrorReason_ERROR_REASON_TOKEN_INVALID},
	{authority.ErrSessionRevoked, codes.Unauthenticated, pb.ErrorReason_ERROR_REASON_SESSION_REVOKED},
	{authority.ErrSessionExpired, codes.Unauthenticated, pb.ErrorReason_ERROR_REASON_SESSION_EXPIRED},
	{authority.ErrTheftDetected, codes.Unauthenticated, pb.ErrorReason_ERROR_REASON_TOKEN_THEFT_DETECTED},
	{authority.ErrAPIKeyInvalid, codes.Unauthenticated, pb.ErrorReason_ERROR_REASON_API_KEY_INVALID},
	{authority.ErrPermissionDenied, codes.PermissionDenied, pb.ErrorReason_ERROR_REASON_PERMISSION_DENIED},
	{authority.ErrBanAlreadyLifted, codes.FailedPrecondition, pb.ErrorReason_ERROR_REASON_BAN_ALREADY_LIFTED},
	{authority.ErrSessionAlreadyRevoked, codes.FailedPrecondition, pb.ErrorReason_ERROR_REASON_SESSION_ALREADY_REVOKED},
	{storage.ErrCompacted, codes.OutOfRange, pb.ErrorReason_ERROR_REASON_REVISION_COMPACTED},
	{storage.ErrClosed, codes.Unavailable, pb.ErrorReason_ERROR_REASON_UNAVAILABLE},
	{errShuttingDown, codes.Unavailable, pb.ErrorReason_ERROR_REASON_UNAVAILABLE},
	{errTooSlow, codes.ResourceExhausted, pb.ErrorReason_ERROR_REASON_SUBSCRIBER_TOO_SLOW},
	{errNoProgress, codes.Unavailable, pb.ErrorReason_ERROR_REASON_UNAVAILABLE},
}

var banReasons = map[authority.BanReason]pb.ErrorReason{
	authority.BannedUser:           pb.ErrorReason_ERROR_REASON_USER_BANNED,
	authority.BannedDevice:         pb.ErrorReason_ERROR_REASON_DEVICE_BANNED,
	authority.BannedIP:             pb.ErrorReason_ERROR_REASON_IP_BANNED,
	authority.CapabilityRestricted: pb.ErrorReason_ERROR_REASON_CAPABILITY_RESTRICTED,
}

// toStatus converts any error a handler meets into the status the caller
// gets. It is the only place that does.
func toStatus(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err // already a status (built by this package)
	}
	var banErr *authority.BanError
	var fieldErr *authority.FieldError
	switch {
	case errors.As(err, &banErr):
		meta := map[string]string{"ban_id": banErr.BanID, "expire_time": ""}
		if !banErr.ExpireTime.IsZero() {
			meta["expire_time"] = banErr.ExpireTime.UTC().Format(time.RFC3339)
		}
		if banErr.Capability != "" {
			meta["capability"] = banErr.Capability
		}
		return newStatus(codes.PermissionDenied, banReasons[banErr.Reason], banErr.Error(), meta)
	case errors.As(err, &fieldErr):
		return newStatus(codes.InvalidArgument, pb.ErrorReason_ERROR_REASON_INVALID_ARGUMENT, fieldErr.Error(),
			map[string]string{"field": fieldErr.Field})
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "the call was canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "the call's deadline passed")
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return newStatus(s.code, s.reason, err.Error(), nil)
		}
	}
	log.ErrorContext(ctx, "internal error", "error", err)
	return newStatus(codes.Internal, pb.ErrorReason_ERROR_REASON_INTERNAL, "internal error; the authority logged the cause", nil)
}
