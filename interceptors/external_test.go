package interceptors_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/authoritytest/testidp"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/interceptors"
)

// TestExternalTokenThroughInterceptors: a service protected by the
// interceptors admits a real OpenID Provider's access token, and its
// handler learns the issuer, user, session and claims from
// SessionFromContext; a ban of the user in the issuer's tenant refuses
// the next call with USER_BANNED and ends the user's open stream.
func TestExternalTokenThroughInterceptors(t *testing.T) {
	idp := testidp.Start(t)
	a := authoritytest.Start(t, authoritytest.Options{Clock: authoritytest.WallClock()})
	admin := a.Dial()
	// The first call of a new connection waits for it (a loaded machine
	// may take longer than the in-memory dialer's connect timeout).
	if _, err := admin.Issuers.CreateIssuer(withTimeout(t, context.Background()), &pb.CreateIssuerRequest{Issuer: &pb.Issuer{
		Issuer: idp.URL, TenantId: "acme", Audiences: []string{testidp.ClientID}}}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("CreateIssuer: %v", err)
	}
	m, _ := runMirror(t, admin, client.MirrorOptions{Clock: a.Clock().Now, Logger: testLogger(t)})
	ra := &realAuthority{Authority: a, admin: admin, mirror: m}
	ra.caughtUp(t)
	seen := make(chan *client.Session, 1)
	svc := chatService()
	svc.unary = func(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
		s, _ := interceptors.SessionFromContext(ctx)
		seen <- s
		return &testgrpc.SimpleResponse{Username: s.UserID}, nil
	}
	api := serve(t, m, svc, chatOptions())
	tok, err := idp.Login(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if u, err := unaryUser(t, api, bearer(tok)); err != nil || u != "alice" {
		t.Fatalf("UnaryCall with the OP's token: %q, %v", u, err)
	}
	s := <-seen
	if s.Issuer != idp.URL || s.TenantID != "acme" || s.SessionID == "" || s.TokenID == "" || !strings.Contains(s.Claims, `"aud"`) {
		t.Fatalf("SessionFromContext: %+v", s)
	}
	ctx := withTimeout(t, bearer(tok))
	chat := openDuplex(t, api, ctx)
	ra.ban(t, &pb.CreateBanRequest{TenantId: "acme", Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "alice"}}, Reason: "spam"})
	if _, err := chat.Recv(); err == nil {
		t.Fatal("the banned user's stream is still open")
	} else {
		wantStatus(t, err, codes.PermissionDenied, "USER_BANNED")
	}
	_, err = unaryUser(t, api, bearer(tok))
	wantStatus(t, err, codes.PermissionDenied, "USER_BANNED")
}
