package authority

import (
	"errors"
	"fmt"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// Sentinel errors of the domain, which imports no gRPC: server/errors.go
// maps each onto an entry of the error catalogue (package rpcerr, the proto
// enum ErrorReason); compare with errors.Is.
var (
	ErrInvalidArgument       = errors.New("invalid argument")
	ErrInvalidPageToken      = errors.New("invalid page token")
	ErrNotFound              = errors.New("not found")
	ErrTokenInvalid          = errors.New("token invalid")
	ErrTokenExpired          = errors.New("access token expired")
	ErrSessionRevoked        = errors.New("session revoked")
	ErrSessionExpired        = errors.New("session expired")
	ErrTheftDetected         = errors.New("refresh token reuse detected: session revoked")
	ErrAPIKeyInvalid         = errors.New("API key missing, unknown, revoked or expired")
	ErrPermissionDenied      = errors.New("permission denied")
	ErrBanAlreadyLifted      = errors.New("ban already lifted")
	ErrSessionAlreadyRevoked = errors.New("session already revoked")
	ErrBanned                = errors.New("banned")
	// ErrLastAdminKey: the change would leave the store without an
	// unrevoked, unexpired API key with scope admin, and so nobody able
	// to manage API keys but through an offline recovery.
	ErrLastAdminKey = errors.New("last admin API key")
	// ErrAlreadyExists: the record to create exists (an external issuer
	// with the same URL).
	ErrAlreadyExists = errors.New("already exists")
)

// FieldError is an invalid request field. It matches ErrInvalidArgument.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Is makes errors.Is(err, ErrInvalidArgument) true.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidArgument }

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// BanReason says which kind of ban refused a request.
type BanReason int

const (
	BannedUser BanReason = iota + 1
	BannedDevice
	BannedIP
	CapabilityRestricted
)

// BanError is a request refused by an active ban. It matches ErrBanned.
// server/errors.go maps it onto the catalogue's BanError (package rpcerr),
// whose Error() is the one text a caller reads; this one is for logs.
type BanError struct {
	Reason     BanReason
	BanID      string
	ExpireTime time.Time // zero = permanent
	Capability string    // for CapabilityRestricted
}

func (e *BanError) Error() string { return "refused by ban " + e.BanID }

// Is makes errors.Is(err, ErrBanned) true.
func (e *BanError) Is(target error) bool { return target == ErrBanned }

func banError(b storage.Ban, capability string) *BanError {
	e := &BanError{BanID: b.ID, ExpireTime: b.ExpireTime}
	switch {
	case !b.Full():
		e.Reason, e.Capability = CapabilityRestricted, capability
	case b.Kind == storage.SubjectUser:
		e.Reason = BannedUser
	case b.Kind == storage.SubjectDevice:
		e.Reason = BannedDevice
	default:
		e.Reason = BannedIP
	}
	return e
}

// IncompleteError is a CreateBan or RevokeUserSessions that did part of its
// work: its revocations did not fit in one store transaction, so they were
// split into several (see revokeAll), and a later one failed. What
// committed stands: the ban is in force (its event reached the mirrors,
// refresh and new sessions are refused), and Revoked sessions are revoked;
// the other sessions it matched are still live. It wraps the failure.
type IncompleteError struct {
	// BanID is the ban CreateBan created; "" for RevokeUserSessions.
	BanID string
	// Revoked counts the sessions revoked before the failure.
	Revoked int
	// Revision is the store revision of the last write that committed.
	Revision int64
	Err      error
}

// Message describes the outcome and what to do, with cause describing the
// failure (server/errors.go passes the failure's own status message, which
// does not disclose internal errors).
func (e *IncompleteError) Message(cause string) string {
	if e.BanID != "" {
		return fmt.Sprintf("ban %s was created and is in force, but revoking the sessions it matches stopped after %d: %s; "+
			"to revoke the rest, create the same ban again (it revokes every matching session still live) and lift the extra one, "+
			"or, for a user ban, call RevokeUserSessions", e.BanID, e.Revoked, cause)
	}
	return fmt.Sprintf("%d sessions were revoked, then revoking the rest stopped: %s; call RevokeUserSessions again to revoke the rest", e.Revoked, cause)
}

func (e *IncompleteError) Error() string { return e.Message(e.Err.Error()) }

// Unwrap returns the failure.
func (e *IncompleteError) Unwrap() error { return e.Err }

func notFound(what, id string) error { return fmt.Errorf("%w: %s %q", ErrNotFound, what, id) }
