package rpcerr

import (
	"errors"

	"google.golang.org/grpc/codes"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// Domain is the ErrorInfo domain of every Portcullis error.
const Domain = "portcullis.dev"

// ErrorInfo metadata keys (errors.proto says which reason carries which).
const (
	MetaBanID       = "ban_id"
	MetaExpireTime  = "expire_time" // RFC 3339, "" when the ban is permanent
	MetaCapability  = "capability"
	MetaField       = "field"
	MetaSentRev     = "sent_revision"
	MetaRevoked     = "revoked_sessions"
	MetaLimit       = "limit"
	MetaUnackedSnap = "unacknowledged_snapshots"
)

// Sentinel errors, one per reason (plus ErrBanned, which every ban reason
// matches), each declared with its row of the catalogue: reason, gRPC code
// and the sentinel's text. Compare with errors.Is.
var (
	ErrBanned               = errors.New("banned")
	ErrUserBanned           = def(pb.ErrorReason_USER_BANNED, codes.PermissionDenied, "user is banned")
	ErrIPBanned             = def(pb.ErrorReason_IP_BANNED, codes.PermissionDenied, "client IP is banned")
	ErrDeviceBanned         = def(pb.ErrorReason_DEVICE_BANNED, codes.PermissionDenied, "device is banned")
	ErrCapabilityRestricted = def(pb.ErrorReason_CAPABILITY_RESTRICTED, codes.PermissionDenied, "capability is restricted")

	ErrSessionRevoked = def(pb.ErrorReason_SESSION_REVOKED, codes.Unauthenticated, "session revoked")
	ErrSessionExpired = def(pb.ErrorReason_SESSION_EXPIRED, codes.Unauthenticated, "session expired")
	ErrTokenExpired   = def(pb.ErrorReason_TOKEN_EXPIRED, codes.Unauthenticated, "access token expired")
	ErrTokenInvalid   = def(pb.ErrorReason_TOKEN_INVALID, codes.Unauthenticated, "access token invalid")
	ErrTheftDetected  = def(pb.ErrorReason_TOKEN_THEFT_DETECTED, codes.Unauthenticated, "refresh token reuse detected: session revoked")

	ErrRevisionCompacted = def(pb.ErrorReason_REVISION_COMPACTED, codes.OutOfRange, "revision compacted")
	// ErrMirrorStale: a client's Mirror has not heard from the authority
	// within its staleness bound, or has not loaded its first snapshot.
	ErrMirrorStale = def(pb.ErrorReason_MIRROR_STALE, codes.Unavailable, "mirror stale: no word from the authority within the staleness bound")

	ErrPermissionDenied      = def(pb.ErrorReason_PERMISSION_DENIED, codes.PermissionDenied, "permission denied")
	ErrAPIKeyInvalid         = def(pb.ErrorReason_API_KEY_INVALID, codes.Unauthenticated, "API key missing, unknown, revoked or expired")
	ErrInvalidArgument       = def(pb.ErrorReason_INVALID_ARGUMENT, codes.InvalidArgument, "invalid argument")
	ErrInvalidPageToken      = def(pb.ErrorReason_INVALID_PAGE_TOKEN, codes.InvalidArgument, "invalid page token")
	ErrNotFound              = def(pb.ErrorReason_NOT_FOUND, codes.NotFound, "not found")
	ErrBanAlreadyLifted      = def(pb.ErrorReason_BAN_ALREADY_LIFTED, codes.FailedPrecondition, "ban already lifted")
	ErrSessionAlreadyRevoked = def(pb.ErrorReason_SESSION_ALREADY_REVOKED, codes.FailedPrecondition, "session already revoked")
	ErrSubscriberTooSlow     = def(pb.ErrorReason_SUBSCRIBER_TOO_SLOW, codes.ResourceExhausted, "subscriber too slow")
	ErrResourceExhausted     = def(pb.ErrorReason_RESOURCE_EXHAUSTED, codes.ResourceExhausted, "resource exhausted")
	ErrUnavailable           = def(pb.ErrorReason_UNAVAILABLE, codes.Unavailable, "unavailable")
	ErrInternal              = def(pb.ErrorReason_INTERNAL, codes.Internal, "internal error")
	// ErrConflict: the write lost to concurrent writers and was not
	// applied; retrying it is safe.
	ErrConflict = def(pb.ErrorReason_CONFLICT, codes.Aborted, "write conflict: not applied, retry")
	// ErrSnapshotTooSoon: the authority refused another full snapshot so
	// soon after one that was not finished; retry after its RetryInfo delay.
	ErrSnapshotTooSoon = def(pb.ErrorReason_SNAPSHOT_TOO_SOON, codes.ResourceExhausted, "snapshot requested too soon")
	// ErrRevisionNotSent: a progress report named a revision the authority
	// never sent on that stream.
	ErrRevisionNotSent = def(pb.ErrorReason_REVISION_NOT_SENT, codes.OutOfRange, "reported revision was never sent")
	// ErrLastAdminKey: the call would leave no unexpired admin key.
	ErrLastAdminKey = def(pb.ErrorReason_LAST_ADMIN_KEY, codes.FailedPrecondition, "last admin API key")
	// ErrAlreadyExists: the record to create exists (an external issuer
	// with the same URL).
	ErrAlreadyExists = def(pb.ErrorReason_ALREADY_EXISTS, codes.AlreadyExists, "already exists")
	// Security Event Tokens a Shared Signals receiver refused; nothing of
	// them was applied.
	ErrSETInvalid         = def(pb.ErrorReason_SET_INVALID, codes.InvalidArgument, "security event token invalid")
	ErrSETKeyInvalid      = def(pb.ErrorReason_SET_KEY_INVALID, codes.InvalidArgument, "security event token not signed by a transmitter key")
	ErrSETIssuerInvalid   = def(pb.ErrorReason_SET_ISSUER_INVALID, codes.InvalidArgument, "security event token from another issuer")
	ErrSETAudienceInvalid = def(pb.ErrorReason_SET_AUDIENCE_INVALID, codes.InvalidArgument, "security event token for another audience")
	ErrSETReplayed        = def(pb.ErrorReason_SET_REPLAYED, codes.InvalidArgument, "security event token received before")
	// A pushed SET held for a predecessor that did not come; it is sent
	// again.
	ErrSETPredecessorMissing = def(pb.ErrorReason_SET_PREDECESSOR_MISSING, codes.Unavailable, "security event token's predecessor not applied")
)

// Entry is one row of the catalogue.
type Entry struct {
	Reason pb.ErrorReason
	Code   codes.Code
	Err    error // the sentinel
}

// catalogue has one row per ErrorReason but the unused zero, in the order
// of the declarations above; a test fails when the enum gains a value
// without a row.
var catalogue []Entry

// def declares a sentinel and its row.
func def(r pb.ErrorReason, c codes.Code, text string) error {
	err := errors.New(text)
	catalogue = append(catalogue, Entry{Reason: r, Code: c, Err: err})
	return err
}

// Lookup returns the row of reason r.
func Lookup(r pb.ErrorReason) (Entry, bool) {
	for _, e := range catalogue {
		if e.Reason == r {
			return e, true
		}
	}
	return Entry{}, false
}

// Match returns the first row whose sentinel err matches with errors.Is.
func Match(err error) (Entry, bool) {
	for _, e := range catalogue {
		if errors.Is(err, e.Err) {
			return e, true
		}
	}
	return Entry{}, false
}
