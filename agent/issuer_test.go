package agent_test

import (
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/portcullis-dev/portcullis/agent"
	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/authoritytest/testidp"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// TestExternalIssuerForwardAuth: a user logs in at a real OpenID Provider
// trusted by the authority (tenant "acme"); forward-auth admits the OP's
// access token with X-Portcullis-Issuer naming the OP, and introspection
// reports the OP as iss; the authority's own tokens carry an empty issuer
// header, so that a gateway copying it drops the client's; a ban of the
// user in the issuer's tenant refuses the OP's token.
func TestExternalIssuerForwardAuth(t *testing.T) {
	idp := testidp.Start(t)
	// The OP stamps its tokens with the wall clock: so does the authority.
	a := authoritytest.Start(t, authoritytest.Options{Clock: authoritytest.WallClock()})
	admin := a.Dial()
	if _, err := admin.Issuers.CreateIssuer(hang(t), &pb.CreateIssuerRequest{Issuer: &pb.Issuer{
		Issuer: idp.URL, TenantId: "acme", Audiences: []string{testidp.ClientID},
	}}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("CreateIssuer: %v", err)
	}
	e := startEnvOn(t, a, admin, testConfig, client.MirrorOptions{}, agent.Options{IntrospectSecrets: []string{introspectSecret}})
	e.caughtUp(t)

	tok, err := idp.Login(hang(t), "alice")
	if err != nil {
		t.Fatal(err)
	}
	ans := e.authz(t, "GET", "/api/posts", tok, map[string]string{"X-Portcullis-Issuer": "https://evil.example"})
	h := ans.header
	if ans.status != http.StatusOK || h.Get("X-Portcullis-User") != "alice" || h.Get("X-Portcullis-Tenant") != "acme" ||
		!strings.HasPrefix(h.Get("X-Portcullis-Session"), "idp-session-") || h.Get("X-Portcullis-Issuer") != idp.URL {
		t.Fatalf("the OP's token: %d %v, body %+v; want 200 for alice of acme, issuer %s", ans.status, h, ans.body, idp.URL)
	}
	code, in, _ := e.introspect(t, "Bearer "+introspectSecret, tok)
	if code != http.StatusOK || !in.Active || in.Iss != idp.URL || in.Sub != "alice" || in.Tid != "acme" {
		t.Fatalf("introspection of the OP's token: %d %+v; want active, iss %s", code, in, idp.URL)
	}

	// The authority's own token: the issuer header is there, empty, so
	// that a gateway copying it overwrites the client's.
	own := e.login(t, "bob", "")
	ans = e.authz(t, "GET", "/api/posts", own, map[string]string{"X-Portcullis-Issuer": "https://evil.example"})
	if v, ok := ans.header["X-Portcullis-Issuer"]; ans.status != http.StatusOK || !ok || len(v) != 1 || v[0] != "" {
		t.Fatalf("own token: %d, X-Portcullis-Issuer %q (present %v); want 200 with it empty", ans.status, v, ok)
	}

	ban := e.ban(t, &pb.CreateBanRequest{TenantId: "acme", Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "alice"}}, Reason: "abuse"})
	wantRefused(t, e.authz(t, "GET", "/api/posts", tok, nil), http.StatusForbidden, "USER_BANNED")
	if _, in, _ = e.introspect(t, "Bearer "+introspectSecret, tok); in.Active {
		t.Fatalf("a banned user's OP token is active: %+v", in)
	}
	e.lift(t, ban.GetBanId())
}
