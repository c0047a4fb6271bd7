package rpcerr

import (
	"fmt"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// BanError is a refusal by a ban. errors.Is matches ErrBanned and the
// sentinel of its Reason.
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

// Error is the one text of a ban refusal, which is also its status message.
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
	if target == ErrBanned {
		return true
	}
	row, ok := Lookup(e.Reason)
	return ok && target == row.Err
}

// Status is the status error of the refusal: PermissionDenied with its
// reason and metadata ban_id, expire_time ("" when permanent) and, when
// set, capability.
func (e *BanError) Status() error {
	meta := map[string]string{MetaBanID: e.BanID, MetaExpireTime: ""}
	if !e.ExpireTime.IsZero() {
		meta[MetaExpireTime] = e.ExpireTime.UTC().Format(time.RFC3339)
	}
	if e.Capability != "" {
		meta[MetaCapability] = e.Capability
	}
	return NewStatus(codes.PermissionDenied, e.Reason, e.Error(), meta, 0).Err()
}

// banFromInfo is the BanError of a ban reason's metadata; nil for another
// reason.
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
