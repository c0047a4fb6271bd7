package server

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

// ErrorDomain is the ErrorInfo domain of every Portcullis error.
const ErrorDomain = "portcullis.dev"

// ReasonString is the ErrorInfo reason of r: its enum value name, e.g.
// "USER_BANNED" (errors.proto names the values after their wire reasons).
func ReasonString(r pb.ErrorReason) string { return r.String() }

// newStatus builds a status with an ErrorInfo.
func newStatus(c codes.Code, r pb.ErrorReason, msg string, meta map[string]string) error {
	st := status.New(c, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: ReasonString(r), Domain: ErrorDomain, Metadata: meta}); err == nil {
		st = d
	}
	return st.Err()
}

// newStatusRetry is newStatus with a RetryInfo when delay is positive.
func newStatusRetry(c codes.Code, r pb.ErrorReason, msg string, meta map[string]string, delay time.Duration) error {
	st := status.New(c, msg)
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: ReasonString(r), Domain: ErrorDomain, Metadata: meta}}
	if delay > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(delay)})
	}
	if d, err := st.WithDetails(details...); err == nil {
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
	{authority.ErrInvalidPageToken, codes.InvalidArgument, pb.ErrorReason_INVALID_PAGE_TOKEN},
	{authority.ErrInvalidArgument, codes.InvalidArgument, pb.ErrorReason_INVALID_ARGUMENT},
	{authority.ErrNotFound, codes.NotFound, pb.ErrorReason_NOT_FOUND},
	{authority.ErrTokenExpired, codes.Unauthenticated, pb.ErrorReason_TOKEN_EXPIRED},
	{authority.ErrTokenInvalid, codes.Unauthenticated, pb.ErrorReason_TOKEN_INVALID},
	{authority.ErrSessionRevoked, codes.Unauthenticated, pb.ErrorReason_SESSION_REVOKED},
	{authority.ErrSessionExpired, codes.Unauthenticated, pb.ErrorReason_SESSION_EXPIRED},
	{authority.ErrTheftDetected, codes.Unauthenticated, pb.ErrorReason_TOKEN_THEFT_DETECTED},
	{authority.ErrAPIKeyInvalid, codes.Unauthenticated, pb.ErrorReason_API_KEY_INVALID},
	{authority.ErrPermissionDenied, codes.PermissionDenied, pb.ErrorReason_PERMISSION_DENIED},
	{authority.ErrBanAlreadyLifted, codes.FailedPrecondition, pb.ErrorReason_BAN_ALREADY_LIFTED},
	{authority.ErrSessionAlreadyRevoked, codes.FailedPrecondition, pb.ErrorReason_SESSION_ALREADY_REVOKED},
	{authority.ErrLastAdminKey, codes.FailedPrecondition, pb.ErrorReason_LAST_ADMIN_KEY},
	{storage.ErrCompacted, codes.OutOfRange, pb.ErrorReason_REVISION_COMPACTED},
	{storage.ErrClosed, codes.Unavailable, pb.ErrorReason_UNAVAILABLE},
	// Retryable: nothing was written.
	{storage.ErrConflict, codes.Aborted, pb.ErrorReason_CONFLICT},
	// A write the domain could not split that is beyond what the store
	// commits at once (a cluster whose --max-txn-ops is too small even for
	// one revocation); nothing was written.
	{storage.ErrTxnTooLarge, codes.ResourceExhausted, pb.ErrorReason_RESOURCE_EXHAUSTED},
	{errShuttingDown, codes.Unavailable, pb.ErrorReason_UNAVAILABLE},
	{errTooSlow, codes.ResourceExhausted, pb.ErrorReason_SUBSCRIBER_TOO_SLOW},
	{errNoProgress, codes.Unavailable, pb.ErrorReason_UNAVAILABLE},
	{errLoadTimeout, codes.Unavailable, pb.ErrorReason_UNAVAILABLE},
	// With a RetryInfo (snapbackoff.go).
	{errSnapshotTooSoon, codes.ResourceExhausted, pb.ErrorReason_SNAPSHOT_TOO_SOON},
	// With metadata sent_revision (progress.go).
	{errRevisionNotSent, codes.OutOfRange, pb.ErrorReason_REVISION_NOT_SENT},
}

// detailedError is an error that adds ErrorInfo metadata and, when delay
// is positive, a google.rpc.RetryInfo to the status of the sentinel it
// wraps.
type detailedError interface {
	statusDetails() (meta map[string]string, delay time.Duration)
}

var banReasons = map[authority.BanReason]pb.ErrorReason{
	authority.BannedUser:           pb.ErrorReason_USER_BANNED,
	authority.BannedDevice:         pb.ErrorReason_DEVICE_BANNED,
	authority.BannedIP:             pb.ErrorReason_IP_BANNED,
	authority.CapabilityRestricted: pb.ErrorReason_CAPABILITY_RESTRICTED,
}

// toStatus converts any error a handler meets into the status the caller
// gets. It is the only place that does.
func toStatus(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	// Before FromError, which would take the status of a wrapped cause and
	// drop what did commit.
	var incomplete *authority.IncompleteError
	if errors.As(err, &incomplete) {
		return incompleteStatus(ctx, log, incomplete)
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
		return newStatus(codes.InvalidArgument, pb.ErrorReason_INVALID_ARGUMENT, fieldErr.Error(),
			map[string]string{"field": fieldErr.Field})
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "the call was canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "the call's deadline passed")
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			var d detailedError
			if errors.As(err, &d) {
				meta, delay := d.statusDetails()
				return newStatusRetry(s.code, s.reason, err.Error(), meta, delay)
			}
			return newStatus(s.code, s.reason, err.Error(), nil)
		}
	}
	log.ErrorContext(ctx, "internal error", "error", err)
	return newStatus(codes.Internal, pb.ErrorReason_INTERNAL, "internal error; the authority logged the cause", nil)
}

// incompleteStatus is the status of a call that committed part of its work
// (a ban and some of its revocations) before failing: the failure's own
// code and reason, so that the caller reacts to the cause (Unavailable:
// retry later), with a message saying what committed and what to do, and
// the ErrorInfo metadata "ban_id" (when a ban was created) and
// "revoked_sessions". A cause without an ErrorInfo (the call was canceled
// or ran out of time) is reported with reason UNAVAILABLE: the work did
// not finish.
func incompleteStatus(ctx context.Context, log *slog.Logger, e *authority.IncompleteError) error {
	cause := status.Convert(toStatus(ctx, log, e.Err))
	info := &errdetails.ErrorInfo{Reason: ReasonString(pb.ErrorReason_UNAVAILABLE), Domain: ErrorDomain, Metadata: map[string]string{}}
	for _, d := range cause.Details() {
		if ci, ok := d.(*errdetails.ErrorInfo); ok {
			info.Reason = ci.GetReason()
			for k, v := range ci.GetMetadata() {
				info.Metadata[k] = v
			}
		}
	}
	if e.BanID != "" {
		info.Metadata["ban_id"] = e.BanID
	}
	info.Metadata["revoked_sessions"] = strconv.Itoa(e.Revoked)
	st := status.New(cause.Code(), e.Message(cause.Message()))
	if d, err := st.WithDetails(info); err == nil {
		st = d
	}
	return st.Err()
}
