package client

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/rpcerr"
	"github.com/portcullis-dev/portcullis/token"
)

// Sentinel errors a protected service meets: refusals by Mirror.Check and
// the interceptors, and the failures of reaching the authority. They are
// the catalogue's own values (package rpcerr owns the table reason -> code
// -> sentinel), so errors.Is works the same with client.ErrX and
// rpcerr.ErrX. Every other reason (ErrNotFound, ErrConflict,
// ErrInvalidArgument, ...) is only in rpcerr: errors.Is(err, rpcerr.ErrX)
// works on the error of every Client call and of Mirror.Check (the
// Client's interceptor converts statuses with FromStatus).
var (
	// ErrBanned matches every refusal by a ban: ErrUserBanned, ErrIPBanned,
	// ErrDeviceBanned and ErrCapabilityRestricted. errors.As(err, &banErr)
	// with a *BanError gives the ban's ID and expiry.
	ErrBanned               = rpcerr.ErrBanned
	ErrUserBanned           = rpcerr.ErrUserBanned
	ErrIPBanned             = rpcerr.ErrIPBanned
	ErrDeviceBanned         = rpcerr.ErrDeviceBanned
	ErrCapabilityRestricted = rpcerr.ErrCapabilityRestricted

	ErrSessionRevoked = rpcerr.ErrSessionRevoked
	ErrSessionExpired = rpcerr.ErrSessionExpired
	ErrTokenExpired   = rpcerr.ErrTokenExpired
	ErrTokenInvalid   = rpcerr.ErrTokenInvalid

	// ErrMirrorStale: the Mirror has not heard from the authority within
	// MirrorOptions.StaleAfter, or has not loaded its first snapshot yet.
	ErrMirrorStale = rpcerr.ErrMirrorStale

	ErrUnavailable      = rpcerr.ErrUnavailable
	ErrPermissionDenied = rpcerr.ErrPermissionDenied
	ErrAPIKeyInvalid    = rpcerr.ErrAPIKeyInvalid
)

// BanError is a refusal by a ban: Mirror.Check returns it, and FromStatus
// puts it inside the *Error of a ban status. errors.Is matches ErrBanned
// and the sentinel of its Reason.
type BanError = rpcerr.BanError

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
	codes.InvalidArgument:   rpcerr.ErrInvalidArgument,
	codes.NotFound:          rpcerr.ErrNotFound,
	codes.PermissionDenied:  ErrPermissionDenied,
	codes.ResourceExhausted: rpcerr.ErrResourceExhausted,
	codes.Unavailable:       ErrUnavailable,
	codes.Internal:          rpcerr.ErrInternal,
	codes.Aborted:           rpcerr.ErrConflict,
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
	p := rpcerr.Parse(st)
	if p.Info != nil {
		e.Reason, e.Metadata = p.Info.GetReason(), p.Info.GetMetadata()
	}
	e.sentinel, e.Ban = p.Entry.Err, p.Ban
	if e.sentinel == nil {
		e.sentinel = byCode[e.Code]
	}
	return e
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
		var e *Error
		if errors.As(err, &e) && e.st != nil {
			return e.st.Err()
		}
		return ban.Status()
	}
	if st, ok := status.FromError(err); ok {
		if st.Code() == codes.Unknown {
			// Not from Portcullis, and not fit to answer with.
			return rpcerr.New(pb.ErrorReason_INTERNAL, "internal error", nil)
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
	if row, ok := rpcerr.Match(err); ok {
		return rpcerr.New(row.Reason, err.Error(), nil)
	}
	if errors.Is(err, ErrBanned) {
		// A bare ErrBanned names no ban: refuse without one.
		return rpcerr.New(pb.ErrorReason_PERMISSION_DENIED, err.Error(), nil)
	}
	return rpcerr.New(pb.ErrorReason_INTERNAL, "internal error", nil)
}
