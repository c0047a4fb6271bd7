package server_test

import (
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/portcullis-dev/portcullis/rpcerr"
)

// wantStatus fails unless err is a status with code c and an ErrorInfo of
// domain portcullis.dev and the given reason; it returns the ErrorInfo.
func wantStatus(t testing.TB, err error, c codes.Code, reason string) *errdetails.ErrorInfo {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || err == nil {
		t.Fatalf("got error %v, want a status %v / %s", err, c, reason)
	}
	if st.Code() != c {
		t.Fatalf("got code %v (%s), want %v / %s", st.Code(), st.Message(), c, reason)
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			if info.GetDomain() != rpcerr.Domain || info.GetReason() != reason {
				t.Fatalf("got ErrorInfo %s/%s, want %s/%s (%s)", info.GetDomain(), info.GetReason(), rpcerr.Domain, reason, st.Message())
			}
			return info
		}
	}
	t.Fatalf("status %v %q has no ErrorInfo", st.Code(), st.Message())
	return nil
}
