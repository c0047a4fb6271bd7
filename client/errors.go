package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/token"
)

// ErrorDomain is the ErrorInfo domain of every Portcullis error.
const ErrorDomain = "portcullis.dev"

// Sentinel errors. Every error the Client's calls return and every error
// Mirror.Check returns matches one of them with errors.Is (the Client's
// interceptor converts statuses with FromStatus). Each corresponds to one
// ErrorInfo reason (the proto enum ErrorReason without its prefix).
var (
	// ErrBanned matches every refusal by a ban: ErrUserBanned, ErrIPBanned,
	// ErrDeviceBanned and ErrCapabilityRestricted. errors.As(err, &banErr)
	// with a *BanError gives the ban's ID and expiry.
	ErrBanned               = errors.New("banned")
	ErrUserBanned           = errors.New("user is banned")
	ErrIPBanned             = errors.New("client IP is banned")
	ErrDeviceBanned         = errors.New("device is banned")
	ErrCapabilityRestricted = errors.New("capability is restricted")

	ErrSessionRevoked = errors.New("session revoked")
	ErrSessionExpired = errors.New("session expired")
	ErrTokenExpired   = errors.New("access token expired")
	ErrTokenInvalid   = errors.New("access token invalid")
	ErrTheftDetected  = errors.New("refresh token reuse detected: session revoked")

	ErrRevisionCompacted = errors.New("revision compacted")
	// ErrMirrorStale: the Mirror has not heard from the authority within
	// MirrorOptions.StaleAfter, or has not loaded its first snapshot yet.
	ErrMirrorStale = errors.New("mirror stale: no word from the authority within the staleness bound")

	ErrPermissionDenied      = errors.New("permission denied")
	ErrAPIKeyInvalid         = errors.New("API key missing, unknown, revoked or expired")
	ErrInvalidArgument       = errors.New("invalid argument")
	ErrInvalidPageToken      = errors.New("invalid page token")
	ErrNotFound              = errors.New("not found")
	ErrBanAlreadyLifted      = errors.New("ban already lifted")
	ErrSessionAlreadyRevoked = errors.New("session already revoked")
	ErrSubscriberTooSlow     = errors.New("subscriber too slow")
	ErrResourceExhausted     = errors.New("resource exhausted")
	ErrUnavailable           = errors.New("unavailable")
	ErrInternal              = errors.New("internal error")
	// ErrConflict: the write lost to concurrent writers and was not
	// applied; retrying it is safe.
	ErrConflict = errors.New("write conflict: not applied, retry")
	// ErrSnapshotTooSoon: the authority refused another full snapshot so
	// soon after one that was not finished; retry after the delay it gave.
	ErrSnapshotTooSoon = errors.New("snapshot requested too soon")
	// ErrRevisionNotSent: a progress report named a revision the
	// authority never sent on that stream.
	ErrRevisionNotSent = errors.New("reported revision was never sent")
	// ErrLastAdminKey: the call would leave no unexpired admin key.
	ErrLastAdminKey = errors.New("last admin API key")
)

// reasons is the one table between ErrorInfo reasons, gRPC codes and
// sentinels, used in both directions (FromStatus and Status). A test checks
// that every value of the proto enum has a row.
var reasons = []struct {
	reason pb.ErrorReason
	code   codes.Code
	err    error
}{
	{pb.ErrorReason_USER_BANNED, codes.PermissionDenied, ErrUserBanned},
	{pb.ErrorReason_IP_BANNED, codes.PermissionDenied, ErrIPBanned},
	{pb.ErrorReason_DEVICE_BANNED, codes.PermissionDenied, ErrDeviceBanned},
	{pb.ErrorReason_CAPABILITY_RESTRICTED, codes.PermissionDenied, ErrCapabilityRestricted},
	{pb.ErrorReason_SESSION_REVOKED, codes.Unauthenticated, ErrSessionRevoked},
	{pb.ErrorReason_SESSION_EXPIRED, codes.Unauthenticated, ErrSessionExpired},
	{pb.ErrorReason_TOKEN_EXPIRED, codes.Unauthenticated, ErrTokenExpired},
	{pb.ErrorReason_TOKEN_INVALID, codes.Unauthenticated, ErrTokenInvalid},
	{pb.ErrorReason_TOKEN_THEFT_DETECTED, codes.Unauthenticated, ErrTheftDetected},
	{pb.ErrorReason_REVISION_COMPACTED, codes.OutOfRange, ErrRevisionCompacted},
	{pb.ErrorReason_MIRROR_STALE, codes.Unavailable, ErrMirrorStale},
	{pb.ErrorReason_PERMISSION_DENIED, codes.PermissionDenied, ErrPermissionDenied},
	{pb.ErrorReason_API_KEY_INVALID, codes.Unauthenticated, ErrAPIKeyInvalid},
	{pb.ErrorReason_INVALID_ARGUMENT, codes.InvalidArgument, ErrInvalidArgument},
	{pb.ErrorReason_INVALID_PAGE_TOKEN, codes.InvalidArgument, ErrInvalidPageToken},
	{pb.ErrorReason_NOT_FOUND, codes.NotFound, ErrNotFound},
	{pb.ErrorReason_BAN_ALREADY_LIFTED, codes.FailedPrecondition, ErrBanAlreadyLifted},
	{pb.ErrorReason_SESSION_ALREADY_REVOKED, codes.FailedPrecondition, ErrSessionAlreadyRevoked},
	{pb.ErrorReason_SUBSCRIBER_TOO_SLOW, codes.ResourceExhausted, ErrSubscriberTooSlow},
	{pb.ErrorReason_RESOURCE_EXHAUSTED, codes.ResourceExhausted, ErrResourceExhausted},
	{pb.ErrorReason_UNAVAILABLE, codes.Unavailable, ErrUnavailable},
	{pb.ErrorReason_INTERNAL, codes.Internal, ErrInternal},
	{pb.ErrorReason_CONFLICT, codes.Aborted, ErrConflict},
	{pb.ErrorReason_SNAPSHOT_TOO_SOON, codes.ResourceExhausted, ErrSnapshotTooSoon},
	{pb.ErrorReason_REVISION_NOT_SENT, codes.OutOfRange, ErrRevisionNotSent},
	{pb.ErrorReason_LAST_ADMIN_KEY, codes.FailedPrecondition, ErrLastAdminKey},
}

// aliases are errors of other packages that Status maps like a sentinel:
// the token format's errors, for callers that verify tokens themselves.
var aliases = []struct{ err, sentinel error }{
	{token.ErrExpired, ErrTokenExpired},
	{token.ErrInvalid, ErrTokenInvalid},
}

// byCode is FromStatus's fallback for statuses without a Portcullis
// ErrorInfo (made by gRPC itself, a proxy, or another server).
var byCode = map[codes.Code]error{
	codes.Canceled:          context.Canceled,
	codes.DeadlineExceeded:  context.DeadlineExceeded,
	codes.InvalidArgument:   ErrInvalidArgument,
	codes.NotFound:          ErrNotFound,
	codes.PermissionDenied:  ErrPermissionDenied,
	codes.ResourceExhausted: ErrResourceExhausted,
	codes.Unavailable:       ErrUnavailable,
	codes.Internal:          ErrInternal,
	codes.Aborted:           ErrConflict,
}

// Reason returns the ErrorInfo reason string of r: its enum value name,
// e.g. "USER_BANNED" (errors.proto names the values after their wire
// reasons, so any language's generated enum maps them by name).
func Reason(r pb.ErrorReason) string { return r.String() }

// Metadata keys of ban refusals.
const (
	MetaBanID      = "ban_id"
	MetaExpireTime = "expire_time"
	MetaCapability = "capability"
)

// BanError is a refusal by a ban: Mirror.Check returns it, and FromStatus
// puts it inside the *Error of a ban status. errors.Is matches ErrBanned
// and the sentinel of its Reason.
type BanError struct {
	// Reason is USER_BANNED, IP_BANNED, DEVICE_BANNED or
	// CAPABILITY_RESTRICTED.
	Reason pb.ErrorReason
	// BanID is the ban's ID ("ban_...").
	BanID string
	// ExpireTime is when the ban stops applying; zero when permanent.
	ExpireTime time.Time
	// Capability is the restricted capability (CAPABILITY_RESTRICTED only).
	Capability string
}

func (e *BanError) Error() string {
	what := "banned"
	switch e.Reason {
	case pb.ErrorReason_USER_BANNED:
		what = "user is banned"
	case pb.ErrorReason_DEVICE_BANNED:
		what = "device is banned"
	case pb.ErrorReason_IP_BANNED:
		what = "client IP is banned"
	case pb.ErrorReason_CAPABILITY_RESTRICTED:
		what = fmt.Sprintf("capability %q is restricted", e.Capability)
	}
	until := "permanently"
	if !e.ExpireTime.IsZero() {
		until = "until " + e.ExpireTime.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("%s (ban %s, %s)", what, e.BanID, until)
}

// Is matches ErrBanned and the sentinel of the ban's reason.
func (e *BanError) Is(target error) bool {
	return target == ErrBanned || (target != nil && target == sentinelOf(e.Reason))
}

// Error is a status returned by the authority (or by gRPC), converted by
// FromStatus. errors.Is matches the sentinel of its reason (or, without a
// Portcullis ErrorInfo, of its code); for a ban, errors.As finds its
// *BanError. status.FromError / status.Code still work on it.
type Error struct {
	Code codes.Code
	// Reason is the ErrorInfo reason ("" when the status had none).
	Reason string
	// Message is the status message.
	Message string
	// Metadata is the ErrorInfo metadata (ban_id, expire_time, field, ...).
	Metadata map[string]string
	// Ban is set for ban refusals.
	Ban *BanError

	sentinel error
	st       *status.Status
}

func (e *Error) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%s (%s): %s", e.Code, e.Reason, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap exposes the sentinel and, for a ban, the *BanError.
func (e *Error) Unwrap() []error {
	var out []error
	if e.sentinel != nil {
		out = append(out, e.sentinel)
	}
	if e.Ban != nil {
		out = append(out, e.Ban)
	}
	return out
}

// GRPCStatus returns the original status, details included, so that a
// converted error can be passed on unchanged.
func (e *Error) GRPCStatus() *status.Status { return e.st }

func sentinelOf(r pb.ErrorReason) error {
	for _, row := range reasons {
		if row.reason == r {
			return row.err
		}
	}
	return nil
}

// FromStatus converts a gRPC status error into an *Error that matches the
// sentinels. nil stays nil; an *Error, and an error that carries no status
// (io.EOF, a context error from the caller's side), is returned unchanged.
func FromStatus(err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	e := &Error{Code: st.Code(), Message: st.Message(), st: st}
	var info *errdetails.ErrorInfo
	for _, d := range st.Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok && i.GetDomain() == ErrorDomain {
			info = i
			break
		}
	}
	if info != nil {
		e.Reason, e.Metadata = info.GetReason(), info.GetMetadata()
		if r, ok := pb.ErrorReason_value[info.GetReason()]; ok && r != 0 {
			e.sentinel = sentinelOf(pb.ErrorReason(r))
			e.Ban = banFromInfo(pb.ErrorReason(r), info.GetMetadata())
		}
	}
	if e.sentinel == nil {
		e.sentinel = byCode[e.Code]
	}
	return e
}

func banFromInfo(r pb.ErrorReason, meta map[string]string) *BanError {
	switch r {
	case pb.ErrorReason_USER_BANNED, pb.ErrorReason_IP_BANNED,
		pb.ErrorReason_DEVICE_BANNED, pb.ErrorReason_CAPABILITY_RESTRICTED:
	default:
		return nil
	}
	b := &BanError{Reason: r, BanID: meta[MetaBanID], Capability: meta[MetaCapability]}
	if s := meta[MetaExpireTime]; s != "" {
		// A malformed time is kept as permanent rather than dropping the
		// refusal: the ban refused the call either way.
		b.ExpireTime, _ = time.Parse(time.RFC3339, s)
	}
	return b
}

// Status converts an error into the gRPC status error a server answers
// with, carrying a Portcullis ErrorInfo:
//   - an error with a status (an *Error from FromStatus, a status error):
//     that status, unchanged;
//   - a *BanError: PermissionDenied with its reason and metadata ban_id,
//     expire_time (RFC 3339, "" when permanent) and, when set, capability;
//   - a sentinel (or an error wrapping one): its code and reason, with the
//     error's text as the message;
//   - context.Canceled and context.DeadlineExceeded: Canceled and
//     DeadlineExceeded;
//   - anything else: Internal / INTERNAL with a generic message (the cause
//     is the caller's to log; it may not be fit for the client), never
//     Unknown.
func Status(err error) error {
	if err == nil {
		return nil
	}
	var ban *BanError
	if errors.As(err, &ban) {
		meta := map[string]string{MetaBanID: ban.BanID, MetaExpireTime: ""}
		if !ban.ExpireTime.IsZero() {
			meta[MetaExpireTime] = ban.ExpireTime.UTC().Format(time.RFC3339)
		}
		if ban.Capability != "" {
			meta[MetaCapability] = ban.Capability
		}
		var e *Error
		if errors.As(err, &e) && e.st != nil {
			return e.st.Err()
		}
		return newStatus(codes.PermissionDenied, ban.Reason, ban.Error(), meta)
	}
	if st, ok := status.FromError(err); ok {
		if st.Code() == codes.Unknown {
			// Not from Portcullis, and not fit to answer with.
			return newStatus(codes.Internal, pb.ErrorReason_INTERNAL, "internal error", nil)
		}
		return st.Err()
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	for _, a := range aliases {
		if errors.Is(err, a.err) {
			err = fmt.Errorf("%w: %w", a.sentinel, err)
			break
		}
	}
	for _, row := range reasons {
		if errors.Is(err, row.err) {
			return newStatus(row.code, row.reason, err.Error(), nil)
		}
	}
	if errors.Is(err, ErrBanned) {
		// A bare ErrBanned names no ban: refuse without one.
		return newStatus(codes.PermissionDenied, pb.ErrorReason_PERMISSION_DENIED, err.Error(), nil)
	}
	return newStatus(codes.Internal, pb.ErrorReason_INTERNAL, "internal error", nil)
}

func newStatus(c codes.Code, r pb.ErrorReason, msg string, meta map[string]string) error {
	st := status.New(c, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: Reason(r), Domain: ErrorDomain, Metadata: meta}); err == nil {
		st = d
	}
	return st.Err()
}
