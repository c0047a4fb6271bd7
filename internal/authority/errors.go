package authority

import (
	"errors"
	"fmt"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// Sentinel errors of the domain. server/errors.go maps each to a gRPC status
// and ErrorInfo reason; compare with errors.Is.
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
type BanError struct {
	Reason     BanReason
	BanID      string
	ExpireTime time.Time // zero = permanent
	Capability string    // for CapabilityRestricted
}

func (e *BanError) Error() string {
	what := map[BanReason]string{
		BannedUser:           "user is banned",
		BannedDevice:         "device is banned",
		BannedIP:             "client IP is banned",
		CapabilityRestricted: fmt.Sprintf("capability %q is restricted", e.Capability),
	}[e.Reason]
	until := "permanently"
	if !e.ExpireTime.IsZero() {
		until = "until " + e.ExpireTime.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("%s (ban %s, %s)", what, e.BanID, until)
}

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

func notFound(what, id string) error { return fmt.Errorf("%w: %s %q", ErrNotFound, what, id) }
