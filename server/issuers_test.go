package server_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/portcullis-dev/portcullis/authoritytest/testidp"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/server"
)

// TestIssuerServiceMetricsAndScope: IssuerService needs scope admin; the
// fetches of an issuer's keys, and their failure once the OP is gone,
// show in the metrics; an issuer deleted is not found.
func TestIssuerServiceMetricsAndScope(t *testing.T) {
	metrics := server.NewMetrics()
	e := newEnv(t, envOptions{server: server.Options{Metrics: metrics}})
	issuers := pb.NewIssuerServiceClient(e.conn)
	idp := testidp.Start(t)
	req := &pb.CreateIssuerRequest{Issuer: &pb.Issuer{Issuer: idp.URL, TenantId: "acme", Audiences: []string{testidp.ClientID}}}
	_, err := issuers.CreateIssuer(as(e.keyWith("bans", "bans:write", "sessions:write")), req)
	if st := status.Convert(err); st.Code() != codes.PermissionDenied {
		t.Fatalf("CreateIssuer without admin: %v", err)
	}
	if _, err := issuers.CreateIssuer(e.admin(), req); err != nil {
		t.Fatalf("CreateIssuer: %v", err)
	}
	idp.Close()
	upd := &pb.UpdateIssuerRequest{Issuer: req.GetIssuer()}
	if _, err := issuers.UpdateIssuer(e.admin(), upd); err != nil {
		t.Fatalf("UpdateIssuer: %v", err)
	}
	rec := httptest.NewRecorder()
	metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`portcullis_issuer_fetch_failing{issuer="` + idp.URL + `"} 1`,
		`portcullis_issuer_last_success_timestamp_seconds{issuer="` + idp.URL + `"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if _, err := issuers.DeleteIssuer(e.admin(), &pb.DeleteIssuerRequest{Issuer: idp.URL}); err != nil {
		t.Fatalf("DeleteIssuer: %v", err)
	}
	_, err = issuers.GetIssuer(e.admin(), &pb.GetIssuerRequest{Issuer: idp.URL})
	if st := status.Convert(err); st.Code() != codes.NotFound {
		t.Fatalf("GetIssuer after delete: %v", err)
	}
}
