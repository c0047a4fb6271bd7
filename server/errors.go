package server

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/fleet"
	"github.com/portcullis-dev/portcullis/internal/receiver"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/transmitter"
	"github.com/portcullis-dev/portcullis/rpcerr"
)

// sentinels maps domain, storage and server errors onto the catalogue
// (package rpcerr), which gives each reason its code. The message is the
// error's own text, which the domain writes for the caller.
var sentinels = []struct {
	err    error
	reason pb.ErrorReason
}{
	{authority.ErrInvalidPageToken, pb.ErrorReason_INVALID_PAGE_TOKEN},
	{authority.ErrInvalidArgument, pb.ErrorReason_INVALID_ARGUMENT},
	{authority.ErrNotFound, pb.ErrorReason_NOT_FOUND},
	{authority.ErrTokenExpired, pb.ErrorReason_TOKEN_EXPIRED},
	{authority.ErrTokenInvalid, pb.ErrorReason_TOKEN_INVALID},
	{authority.ErrSessionRevoked, pb.ErrorReason_SESSION_REVOKED},
	{authority.ErrSessionExpired, pb.ErrorReason_SESSION_EXPIRED},
	{authority.ErrTheftDetected, pb.ErrorReason_TOKEN_THEFT_DETECTED},
	{authority.ErrAPIKeyInvalid, pb.ErrorReason_API_KEY_INVALID},
	{authority.ErrPermissionDenied, pb.ErrorReason_PERMISSION_DENIED},
	{authority.ErrBanAlreadyLifted, pb.ErrorReason_BAN_ALREADY_LIFTED},
	{authority.ErrSessionAlreadyRevoked, pb.ErrorReason_SESSION_ALREADY_REVOKED},
	{authority.ErrLastAdminKey, pb.ErrorReason_LAST_ADMIN_KEY},
	{authority.ErrAlreadyExists, pb.ErrorReason_ALREADY_EXISTS},
	{transmitter.ErrStreamNotFound, pb.ErrorReason_NOT_FOUND},
	{transmitter.ErrVerificationTooSoon, pb.ErrorReason_RESOURCE_EXHAUSTED},
	{transmitter.ErrTooManyStreams, pb.ErrorReason_RESOURCE_EXHAUSTED},
	{storage.ErrCompacted, pb.ErrorReason_REVISION_COMPACTED},
	{storage.ErrClosed, pb.ErrorReason_UNAVAILABLE},
	// Retryable: nothing was written.
	{storage.ErrConflict, pb.ErrorReason_CONFLICT},
	// A write the domain could not split that is beyond what the store
	// commits at once (a cluster whose --max-txn-ops is too small even for
	// one revocation); nothing was written.
	{storage.ErrTxnTooLarge, pb.ErrorReason_RESOURCE_EXHAUSTED},
	{errShuttingDown, pb.ErrorReason_UNAVAILABLE},
	{errTooSlow, pb.ErrorReason_SUBSCRIBER_TOO_SLOW},
	{fleet.ErrNoProgress, pb.ErrorReason_UNAVAILABLE},
	{fleet.ErrLoadTimeout, pb.ErrorReason_UNAVAILABLE},
	{fleet.ErrUnknownSubscriber, pb.ErrorReason_NOT_FOUND},
	{fleet.ErrSubscriberGone, pb.ErrorReason_NOT_FOUND},
	// With a RetryInfo (snapbackoff.go).
	{errSnapshotTooSoon, pb.ErrorReason_SNAPSHOT_TOO_SOON},
	// With metadata sent_revision (fleet.RevisionNotSentError).
	{fleet.ErrRevisionNotSent, pb.ErrorReason_REVISION_NOT_SENT},
	// Shared Signals: SETs the receiver refused (nothing applied).
	{receiver.ErrSETInvalid, pb.ErrorReason_SET_INVALID},
	{receiver.ErrSETKey, pb.ErrorReason_SET_KEY_INVALID},
	{receiver.ErrSETIssuer, pb.ErrorReason_SET_ISSUER_INVALID},
	{receiver.ErrSETAudience, pb.ErrorReason_SET_AUDIENCE_INVALID},
	{receiver.ErrSETReplayed, pb.ErrorReason_SET_REPLAYED},
	{receiver.ErrSETPredecessorMissing, pb.ErrorReason_SET_PREDECESSOR_MISSING},
	// A push without the Authorization given to the transmitter (401).
	{receiver.ErrPushUnauthorized, pb.ErrorReason_API_KEY_INVALID},
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
		return (&rpcerr.BanError{Reason: banReasons[banErr.Reason], BanID: banErr.BanID,
			ExpireTime: banErr.ExpireTime, Capability: banErr.Capability}).Status()
	case errors.As(err, &fieldErr):
		return rpcerr.New(pb.ErrorReason_INVALID_ARGUMENT, fieldErr.Error(),
			map[string]string{rpcerr.MetaField: fieldErr.Field})
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "the call was canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "the call's deadline passed")
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			var meta map[string]string
			var delay time.Duration
			var d detailedError
			var notSent *fleet.RevisionNotSentError
			if errors.As(err, &d) {
				meta, delay = d.statusDetails()
			} else if errors.As(err, &notSent) {
				meta = map[string]string{rpcerr.MetaSentRev: strconv.FormatInt(notSent.Sent, 10)}
			}
			row, _ := rpcerr.Lookup(s.reason)
			return rpcerr.NewStatus(row.Code, s.reason, err.Error(), meta, delay).Err()
		}
	}
	log.ErrorContext(ctx, "internal error", "error", err)
	return rpcerr.New(pb.ErrorReason_INTERNAL, "internal error; the authority logged the cause", nil)
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
	reason, meta := pb.ErrorReason_UNAVAILABLE, map[string]string{}
	if p := rpcerr.Parse(cause); p.Entry.Err != nil {
		reason = p.Entry.Reason
		for k, v := range p.Info.GetMetadata() {
			meta[k] = v
		}
	}
	if e.BanID != "" {
		meta[rpcerr.MetaBanID] = e.BanID
	}
	meta[rpcerr.MetaRevoked] = strconv.Itoa(e.Revoked)
	return rpcerr.NewStatus(cause.Code(), reason, e.Message(cause.Message()), meta, 0).Err()
}
