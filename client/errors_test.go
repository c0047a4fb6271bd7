package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/rpcerr"
	"github.com/portcullis-dev/portcullis/token"
)

// statusView is what a caller sees of a status.
type statusView struct {
	code   string
	reason string
	domain string
	meta   map[string]string
	msg    string
}

func asStatus(err error) (statusView, bool) {
	st, ok := status.FromError(err)
	if !ok {
		return statusView{}, false
	}
	v := statusView{code: st.Code().String(), msg: st.Message()}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			v.reason, v.domain, v.meta = info.GetReason(), info.GetDomain(), info.GetMetadata()
		}
	}
	return v, true
}

func infoStatus(c codes.Code, reason string, meta map[string]string) error {
	st, err := status.New(c, "from the authority").WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: rpcerr.Domain, Metadata: meta})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

// errorRows is the contract of docs/design.md section 5 and errors.proto, one
// row per reason.
var errorRows = []struct {
	reason   string
	code     codes.Code
	sentinel error
	ban      bool
}{
	{"USER_BANNED", codes.PermissionDenied, client.ErrUserBanned, true},
	{"IP_BANNED", codes.PermissionDenied, client.ErrIPBanned, true},
	{"DEVICE_BANNED", codes.PermissionDenied, client.ErrDeviceBanned, true},
	{"CAPABILITY_RESTRICTED", codes.PermissionDenied, client.ErrCapabilityRestricted, true},
	{"SESSION_REVOKED", codes.Unauthenticated, client.ErrSessionRevoked, false},
	{"SESSION_EXPIRED", codes.Unauthenticated, client.ErrSessionExpired, false},
	{"TOKEN_EXPIRED", codes.Unauthenticated, client.ErrTokenExpired, false},
	{"TOKEN_INVALID", codes.Unauthenticated, client.ErrTokenInvalid, false},
	{"TOKEN_THEFT_DETECTED", codes.Unauthenticated, rpcerr.ErrTheftDetected, false},
	{"REVISION_COMPACTED", codes.OutOfRange, rpcerr.ErrRevisionCompacted, false},
	{"MIRROR_STALE", codes.Unavailable, client.ErrMirrorStale, false},
	{"PERMISSION_DENIED", codes.PermissionDenied, client.ErrPermissionDenied, false},
	{"API_KEY_INVALID", codes.Unauthenticated, client.ErrAPIKeyInvalid, false},
	{"INVALID_ARGUMENT", codes.InvalidArgument, rpcerr.ErrInvalidArgument, false},
	{"INVALID_PAGE_TOKEN", codes.InvalidArgument, rpcerr.ErrInvalidPageToken, false},
	{"NOT_FOUND", codes.NotFound, rpcerr.ErrNotFound, false},
	{"BAN_ALREADY_LIFTED", codes.FailedPrecondition, rpcerr.ErrBanAlreadyLifted, false},
	{"SESSION_ALREADY_REVOKED", codes.FailedPrecondition, rpcerr.ErrSessionAlreadyRevoked, false},
	{"SUBSCRIBER_TOO_SLOW", codes.ResourceExhausted, rpcerr.ErrSubscriberTooSlow, false},
	{"RESOURCE_EXHAUSTED", codes.ResourceExhausted, rpcerr.ErrResourceExhausted, false},
	{"UNAVAILABLE", codes.Unavailable, client.ErrUnavailable, false},
	{"INTERNAL", codes.Internal, rpcerr.ErrInternal, false},
	{"CONFLICT", codes.Aborted, rpcerr.ErrConflict, false},
	{"SNAPSHOT_TOO_SOON", codes.ResourceExhausted, rpcerr.ErrSnapshotTooSoon, false},
	{"REVISION_NOT_SENT", codes.OutOfRange, rpcerr.ErrRevisionNotSent, false},
	{"LAST_ADMIN_KEY", codes.FailedPrecondition, rpcerr.ErrLastAdminKey, false},
	{"ALREADY_EXISTS", codes.AlreadyExists, rpcerr.ErrAlreadyExists, false},
	{"SET_INVALID", codes.InvalidArgument, rpcerr.ErrSETInvalid, false},
	{"SET_KEY_INVALID", codes.InvalidArgument, rpcerr.ErrSETKeyInvalid, false},
	{"SET_ISSUER_INVALID", codes.InvalidArgument, rpcerr.ErrSETIssuerInvalid, false},
	{"SET_AUDIENCE_INVALID", codes.InvalidArgument, rpcerr.ErrSETAudienceInvalid, false},
	{"SET_REPLAYED", codes.InvalidArgument, rpcerr.ErrSETReplayed, false},
	{"SET_PREDECESSOR_MISSING", codes.Unavailable, rpcerr.ErrSETPredecessorMissing, false},
}

// TestErrorRowsCoverTheEnum: every ErrorReason of the proto has a row.
func TestErrorRowsCoverTheEnum(t *testing.T) {
	for v, name := range pb.ErrorReason_name {
		if v == 0 {
			continue
		}
		r := pb.ErrorReason(v).String()
		if r != name {
			t.Fatalf("Reason(%s) = %s", name, r)
		}
		found := false
		for _, row := range errorRows {
			found = found || row.reason == r
		}
		if !found {
			t.Errorf("no row for %s", r)
		}
	}
}

func TestFromStatus(t *testing.T) {
	exp := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, row := range errorRows {
		t.Run(row.reason, func(t *testing.T) {
			meta := map[string]string{"field": "x"}
			if row.ban {
				meta = map[string]string{"ban_id": "ban_1", "expire_time": exp.Format(time.RFC3339), "capability": "post"}
			}
			err := client.FromStatus(infoStatus(row.code, row.reason, meta))
			if !errors.Is(err, row.sentinel) {
				t.Fatalf("%v does not match %v", err, row.sentinel)
			}
			for _, other := range errorRows {
				if other.sentinel != row.sentinel && errors.Is(err, other.sentinel) {
					t.Fatalf("%v also matches %v", err, other.sentinel)
				}
			}
			if errors.Is(err, client.ErrBanned) != row.ban {
				t.Fatalf("errors.Is(%v, ErrBanned) = %v", err, !row.ban)
			}
			var e *client.Error
			if !errors.As(err, &e) || e.Code != row.code || e.Reason != row.reason || !maps.Equal(e.Metadata, meta) {
				t.Fatalf("*Error %+v", e)
			}
			if status.Code(err) != row.code {
				t.Fatalf("status.Code = %v", status.Code(err))
			}
			var be *client.BanError
			if errors.As(err, &be) != row.ban {
				t.Fatalf("errors.As BanError = %v", !row.ban)
			}
			if row.ban && (be.BanID != "ban_1" || !be.ExpireTime.Equal(exp) || be.Capability != "post" || e.Ban != be ||
				be.Reason.String() != row.reason) {
				t.Fatalf("BanError %+v", be)
			}
		})
	}

	t.Run("permanent ban", func(t *testing.T) {
		err := client.FromStatus(infoStatus(codes.PermissionDenied, "USER_BANNED", map[string]string{"ban_id": "ban_2", "expire_time": ""}))
		var be *client.BanError
		if !errors.As(err, &be) || !be.ExpireTime.IsZero() || be.BanID != "ban_2" {
			t.Fatalf("%+v", be)
		}
	})
	t.Run("passes through", func(t *testing.T) {
		if client.FromStatus(nil) != nil {
			t.Fatal("nil")
		}
		for _, err := range []error{io.EOF, context.Canceled, errors.New("plain")} {
			if got := client.FromStatus(err); got != err {
				t.Fatalf("FromStatus(%v) = %v", err, got)
			}
		}
		once := client.FromStatus(infoStatus(codes.NotFound, "NOT_FOUND", nil))
		if client.FromStatus(once) != once {
			t.Fatal("converted twice")
		}
	})
	t.Run("without ErrorInfo", func(t *testing.T) {
		for c, want := range map[codes.Code]error{
			codes.Unavailable: client.ErrUnavailable, codes.Canceled: context.Canceled,
			codes.DeadlineExceeded: context.DeadlineExceeded, codes.PermissionDenied: client.ErrPermissionDenied,
		} {
			if err := client.FromStatus(status.Error(c, "x")); !errors.Is(err, want) || status.Code(err) != c {
				t.Fatalf("FromStatus(%v) = %v, want %v", c, err, want)
			}
		}
		// Another domain's ErrorInfo, or an unknown reason, is no sentinel
		// of ours.
		st, _ := status.New(codes.Unauthenticated, "x").WithDetails(&errdetails.ErrorInfo{Reason: "USER_BANNED", Domain: "example.com"})
		if err := client.FromStatus(st.Err()); errors.Is(err, client.ErrBanned) {
			t.Fatalf("foreign ErrorInfo matched: %v", err)
		}
		if err := client.FromStatus(infoStatus(codes.Unauthenticated, "NEW_REASON", nil)); errors.Is(err, client.ErrBanned) {
			t.Fatalf("unknown reason matched: %v", err)
		}
	})
}

func TestStatus(t *testing.T) {
	exp := time.Date(2026, 12, 1, 10, 30, 0, 123, time.FixedZone("x", 3600))
	cases := []struct {
		name string
		err  error
		want statusView
	}{
		{"user ban", &client.BanError{Reason: pb.ErrorReason_USER_BANNED, BanID: "ban_1", ExpireTime: exp},
			statusView{code: "PermissionDenied", reason: "USER_BANNED", meta: map[string]string{"ban_id": "ban_1", "expire_time": "2026-12-01T09:30:00Z"}}},
		{"permanent IP ban", &client.BanError{Reason: pb.ErrorReason_IP_BANNED, BanID: "ban_2"},
			statusView{code: "PermissionDenied", reason: "IP_BANNED", meta: map[string]string{"ban_id": "ban_2", "expire_time": ""}}},
		{"device ban, wrapped", fmt.Errorf("stream: %w", &client.BanError{Reason: pb.ErrorReason_DEVICE_BANNED, BanID: "ban_3"}),
			statusView{code: "PermissionDenied", reason: "DEVICE_BANNED", meta: map[string]string{"ban_id": "ban_3", "expire_time": ""}}},
		{"capability", &client.BanError{Reason: pb.ErrorReason_CAPABILITY_RESTRICTED, BanID: "ban_4", Capability: "post"},
			statusView{code: "PermissionDenied", reason: "CAPABILITY_RESTRICTED", meta: map[string]string{"ban_id": "ban_4", "expire_time": "", "capability": "post"}}},
		{"revoked", fmt.Errorf("%w: session ses_1", client.ErrSessionRevoked), statusView{code: "Unauthenticated", reason: "SESSION_REVOKED"}},
		{"token expired", client.ErrTokenExpired, statusView{code: "Unauthenticated", reason: "TOKEN_EXPIRED"}},
		{"token package expired", token.ErrExpired, statusView{code: "Unauthenticated", reason: "TOKEN_EXPIRED"}},
		{"token package invalid", fmt.Errorf("%w: bad", token.ErrInvalid), statusView{code: "Unauthenticated", reason: "TOKEN_INVALID"}},
		{"stale", client.ErrMirrorStale, statusView{code: "Unavailable", reason: "MIRROR_STALE"}},
		{"bare ErrBanned", client.ErrBanned, statusView{code: "PermissionDenied", reason: "PERMISSION_DENIED"}},
		{"unknown", errors.New("disk on fire"), statusView{code: "Internal", reason: "INTERNAL"}},
	}
	for _, row := range errorRows {
		cases = append(cases, struct {
			name string
			err  error
			want statusView
		}{row.reason, row.sentinel, statusView{code: row.code.String(), reason: row.reason}})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := asStatus(client.Status(tc.err))
			if !ok || got.code != tc.want.code || got.reason != tc.want.reason || got.domain != rpcerr.Domain ||
				!maps.Equal(got.meta, tc.want.meta) {
				t.Fatalf("Status(%v) = %+v, want %+v", tc.err, got, tc.want)
			}
			if got.reason == "INTERNAL" && got.msg != "internal error" && tc.name == "unknown" {
				t.Fatalf("internal error leaked its cause: %q", got.msg)
			}
			// The round trip: the status converts back to what matches the
			// original.
			back := client.FromStatus(client.Status(tc.err))
			for _, row := range errorRows {
				if errors.Is(tc.err, row.sentinel) && !errors.Is(back, row.sentinel) {
					t.Fatalf("round trip lost %v: %v", row.sentinel, back)
				}
			}
			var want, gotBan *client.BanError
			if errors.As(tc.err, &want) {
				if !errors.As(back, &gotBan) || gotBan.BanID != want.BanID || gotBan.Capability != want.Capability ||
					!gotBan.ExpireTime.Equal(want.ExpireTime.Truncate(time.Second)) || gotBan.Reason != want.Reason {
					t.Fatalf("round trip: %+v, want %+v", gotBan, want)
				}
			}
		})
	}

	t.Run("nil and context", func(t *testing.T) {
		if client.Status(nil) != nil {
			t.Fatal("Status(nil)")
		}
		if c := status.Code(client.Status(context.Canceled)); c != codes.Canceled {
			t.Fatalf("canceled: %v", c)
		}
		if c := status.Code(client.Status(fmt.Errorf("x: %w", context.DeadlineExceeded))); c != codes.DeadlineExceeded {
			t.Fatalf("deadline: %v", c)
		}
	})
	t.Run("status passes through", func(t *testing.T) {
		// A status from the authority, converted by FromStatus, goes back
		// out as it came, details and all.
		for _, row := range errorRows {
			orig := infoStatus(row.code, row.reason, map[string]string{"ban_id": "b", "expire_time": "", "k": "v"})
			got, _ := asStatus(client.Status(client.FromStatus(orig)))
			want, _ := asStatus(orig)
			if got.code != want.code || got.reason != want.reason || got.msg != want.msg || !maps.Equal(got.meta, want.meta) {
				t.Fatalf("%s: %+v, want %+v", row.reason, got, want)
			}
		}
		if c := status.Code(client.Status(status.Error(codes.Unknown, "x"))); c != codes.Internal {
			t.Fatalf("Unknown went out as %v", c)
		}
	})
}

// TestSentinelsAreTheCatalogues: the sentinels client re-exports are the
// catalogue's values themselves, so errors.Is(err, client.ErrX) and
// errors.Is(err, rpcerr.ErrX) agree on every error.
func TestSentinelsAreTheCatalogues(t *testing.T) {
	for _, p := range []struct {
		name           string
		client, rpcerr error
	}{
		{"ErrBanned", client.ErrBanned, rpcerr.ErrBanned},
		{"ErrUserBanned", client.ErrUserBanned, rpcerr.ErrUserBanned},
		{"ErrIPBanned", client.ErrIPBanned, rpcerr.ErrIPBanned},
		{"ErrDeviceBanned", client.ErrDeviceBanned, rpcerr.ErrDeviceBanned},
		{"ErrCapabilityRestricted", client.ErrCapabilityRestricted, rpcerr.ErrCapabilityRestricted},
		{"ErrSessionRevoked", client.ErrSessionRevoked, rpcerr.ErrSessionRevoked},
		{"ErrSessionExpired", client.ErrSessionExpired, rpcerr.ErrSessionExpired},
		{"ErrTokenExpired", client.ErrTokenExpired, rpcerr.ErrTokenExpired},
		{"ErrTokenInvalid", client.ErrTokenInvalid, rpcerr.ErrTokenInvalid},
		{"ErrMirrorStale", client.ErrMirrorStale, rpcerr.ErrMirrorStale},
		{"ErrUnavailable", client.ErrUnavailable, rpcerr.ErrUnavailable},
		{"ErrPermissionDenied", client.ErrPermissionDenied, rpcerr.ErrPermissionDenied},
		{"ErrAPIKeyInvalid", client.ErrAPIKeyInvalid, rpcerr.ErrAPIKeyInvalid},
	} {
		if p.client != p.rpcerr {
			t.Errorf("client.%s is not rpcerr.%s", p.name, p.name)
		}
	}
}
