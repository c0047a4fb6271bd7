package server_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/server"
)

// Over gRPC: denied calls past the global bound, and those the
// per-address limit refused, are counted into call.denied.summary records
// (one per interval of the authority's clock, the rest at
// FlushDeniedAudit) instead of one record each; the callers' answers do
// not change.
func TestDeniedCallFloodSummarized(t *testing.T) {
	e := newEnv(t, envOptions{server: server.Options{Limits: server.Limits{
		FailedAuthPerSecond: slow, FailedAuthBurst: 20,
		DeniedAuditPerSecond: slow, DeniedAuditBurst: 10, DeniedSummaryInterval: time.Minute,
	}}})
	bad := as(authority.APIKeyPrefix + "nope_0000")
	for i := range 50 {
		_, err := e.bans.ListBans(bad, &pb.ListBansRequest{})
		if i < 20 {
			wantStatus(t, err, codes.Unauthenticated, "API_KEY_INVALID")
		} else {
			wantStatus(t, err, codes.ResourceExhausted, "RESOURCE_EXHAUSTED")
		}
	}
	records := func(action string) []*pb.AuditRecord {
		t.Helper()
		resp, err := e.audit.ListAuditRecords(e.admin(), &pb.ListAuditRecordsRequest{Action: action, PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetRecords()
	}
	if n := len(records("call.denied")); n != 10 {
		t.Errorf("%d call.denied records, want the bound, 10", n)
	}
	if n := len(records(authority.ActionDeniedSummary)); n != 0 {
		t.Errorf("%d summaries within the first interval, want none", n)
	}

	// The next denied call after the interval writes the summary of the 40
	// others (10 past the global bound, 30 refused by the per-address
	// limit), and is counted in the next one.
	e.clock.Advance(time.Minute)
	_, err := e.bans.ListBans(bad, &pb.ListBansRequest{})
	wantStatus(t, err, codes.ResourceExhausted, "RESOURCE_EXHAUSTED")
	sums := records(authority.ActionDeniedSummary)
	if len(sums) != 1 {
		t.Fatalf("%d summaries after the interval, want 1", len(sums))
	}
	want := map[string]string{"calls": "40", "rate_limited": "30", "addresses": "1", "reasons": "invalid API key=40"}
	for k, v := range want {
		if got := sums[0].GetDetails()[k]; got != v {
			t.Errorf("summary %s = %q, want %q (details %v)", k, got, v, sums[0].GetDetails())
		}
	}
	e.srv.FlushDeniedAudit(t.Context())
	sums = records(authority.ActionDeniedSummary)
	if len(sums) != 2 || sums[1].GetDetails()["calls"] != "1" {
		t.Errorf("after FlushDeniedAudit: summaries %v, want a second one counting 1 call", sums)
	}
	if n := len(records("call.denied")); n != 10 {
		t.Errorf("%d call.denied records in the end, want 10", n)
	}
}
