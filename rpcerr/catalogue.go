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
// matches). Compare with errors.Is.
var (
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
	// ErrMirrorStale: a client's Mirror has not heard from the authority
	// within its staleness bound, or has not loaded its first snapshot.
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
	// soon after one that was not finished; retry after its RetryInfo delay.
	ErrSnapshotTooSoon = errors.New("snapshot requested too soon")
	// ErrRevisionNotSent: a progress report named a revision the authority
	// never sent on that stream.
	ErrRevisionNotSent = errors.New("reported revision was never sent")
	// ErrLastAdminKey: the call would leave no unexpired admin key.
	ErrLastAdminKey = errors.New("last admin API key")
)

// Entry is one row of the catalogue.
type Entry struct {
	Reason pb.ErrorReason
	Code   codes.Code
	Err    error // the sentinel
}

// catalogue has one row per ErrorReason but the unused zero; a test fails
// when the enum gains a value without a row.
var catalogue = []Entry{
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
