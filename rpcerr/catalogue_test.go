package rpcerr_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/rpcerr"
)

// TestEveryReasonHasARow fails when errors.proto gains a reason that the
// catalogue does not list, or a row has no code or sentinel.
func TestEveryReasonHasARow(t *testing.T) {
	seen := map[error]pb.ErrorReason{}
	for v, name := range pb.ErrorReason_name {
		if v == 0 {
			continue
		}
		row, ok := rpcerr.Lookup(pb.ErrorReason(v))
		if !ok {
			t.Errorf("no catalogue row for %s", name)
			continue
		}
		if row.Code == codes.OK || row.Code == codes.Unknown || row.Err == nil {
			t.Errorf("row %s: code %v, sentinel %v", name, row.Code, row.Err)
		}
		if other, dup := seen[row.Err]; dup {
			t.Errorf("%s and %s share a sentinel", name, other)
		}
		seen[row.Err] = row.Reason
		if m, _ := rpcerr.Match(fmt.Errorf("wrapped: %w", row.Err)); m.Reason != row.Reason {
			t.Errorf("Match(%s) = %s", name, m.Reason)
		}
	}
}

// TestNewRoundTrip: a status built by New parses back to its row, reason
// written as the enum value's name.
func TestNewRoundTrip(t *testing.T) {
	for v := range pb.ErrorReason_name {
		if v == 0 {
			continue
		}
		r := pb.ErrorReason(v)
		st := status.Convert(rpcerr.New(r, "msg", map[string]string{"k": "v"}))
		p := rpcerr.Parse(st)
		if p.Info.GetReason() != r.String() || p.Info.GetDomain() != rpcerr.Domain || p.Entry.Reason != r ||
			st.Code() != p.Entry.Code || p.Info.GetMetadata()["k"] != "v" {
			t.Errorf("%s: code %v, parsed %+v", r, st.Code(), p)
		}
	}
}

func TestBanErrorStatus(t *testing.T) {
	exp := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	b := &rpcerr.BanError{Reason: pb.ErrorReason_CAPABILITY_RESTRICTED, BanID: "ban_1", ExpireTime: exp, Capability: "post"}
	if !errors.Is(b, rpcerr.ErrBanned) || !errors.Is(b, rpcerr.ErrCapabilityRestricted) || errors.Is(b, rpcerr.ErrUserBanned) {
		t.Fatal("BanError.Is matches the wrong sentinels")
	}
	if want := `capability "post" is restricted (ban ban_1, until 2026-12-01T09:30:00Z)`; b.Error() != want {
		t.Fatalf("Error() = %q, want %q", b.Error(), want)
	}
	st := status.Convert(b.Status())
	p := rpcerr.Parse(st)
	if st.Code() != codes.PermissionDenied || st.Message() != b.Error() || p.Ban == nil || *p.Ban != *b {
		t.Fatalf("status %v %q parsed back to %+v", st.Code(), st.Message(), p.Ban)
	}
	perm := &rpcerr.BanError{Reason: pb.ErrorReason_IP_BANNED, BanID: "ban_2"}
	if p := rpcerr.Parse(status.Convert(perm.Status())); p.Info.GetMetadata()[rpcerr.MetaExpireTime] != "" || *p.Ban != *perm {
		t.Fatalf("permanent ban parsed back to %+v", p)
	}
}

func TestNewStatusRetry(t *testing.T) {
	st := rpcerr.NewStatus(codes.ResourceExhausted, pb.ErrorReason_SNAPSHOT_TOO_SOON, "later", nil, 3*time.Second)
	var got time.Duration
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			got = ri.GetRetryDelay().AsDuration()
		}
	}
	if got != 3*time.Second {
		t.Fatalf("RetryInfo delay %v, want 3s", got)
	}
	for _, d := range rpcerr.NewStatus(codes.Internal, pb.ErrorReason_INTERNAL, "x", nil, 0).Details() {
		if _, ok := d.(*errdetails.RetryInfo); ok {
			t.Fatal("RetryInfo without a delay")
		}
	}
}

// TestParseForeign: a status without a Portcullis ErrorInfo, or with an
// unknown reason, parses to no row.
func TestParseForeign(t *testing.T) {
	if p := rpcerr.Parse(status.New(codes.Unavailable, "proxy")); p.Info != nil || p.Entry.Err != nil {
		t.Fatalf("foreign status parsed to %+v", p)
	}
	st, _ := status.New(codes.Internal, "x").WithDetails(&errdetails.ErrorInfo{Reason: "FROM_THE_FUTURE", Domain: rpcerr.Domain})
	if p := rpcerr.Parse(st); p.Info == nil || p.Entry.Err != nil || p.Ban != nil {
		t.Fatalf("unknown reason parsed to %+v", p)
	}
}
