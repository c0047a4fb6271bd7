package client_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/authoritytest/testidp"
	"github.com/portcullis-dev/portcullis/client"
)

// wantStatus fails unless err is a status with code c and ErrorInfo
// reason r.
func wantStatus(t *testing.T, what string, err error, c codes.Code, r pb.ErrorReason) {
	t.Helper()
	v, ok := asStatus(err)
	if !ok || v.code != c.String() || v.reason != r.String() {
		t.Fatalf("%s: %v, want %s / %s", what, err, c, r)
	}
}

// externalSetup is a real OP, an authority trusting it (tenant "acme",
// audience its client) and a mirror of the authority whose issuer events
// are signalled on issuerEvents.
type externalSetup struct {
	idp          *testidp.IdP
	auth         *authoritytest.Authority
	admin        *client.Client
	mirror       *client.Mirror
	issuerEvents chan *pb.Issuer
}

func startExternal(t *testing.T) *externalSetup {
	t.Helper()
	x := &externalSetup{idp: testidp.Start(t), issuerEvents: make(chan *pb.Issuer, 16)}
	// The OP stamps its tokens with the wall clock: so does the authority.
	x.auth = authoritytest.Start(t, authoritytest.Options{Clock: authoritytest.WallClock()})
	x.admin = x.auth.Dial()
	// The first call of a new connection waits for it (a loaded machine
	// may take longer than the in-memory dialer's connect timeout).
	ctx, cancel := context.WithTimeout(t.Context(), hang)
	defer cancel()
	if _, err := x.admin.Issuers.CreateIssuer(ctx, &pb.CreateIssuerRequest{Issuer: &pb.Issuer{
		Issuer: x.idp.URL, TenantId: "acme", Audiences: []string{testidp.ClientID},
	}}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("CreateIssuer: %v", err)
	}
	m, stop, err := client.StartMirror(t.Context(), x.auth.Dial(), client.MirrorOptions{
		Clock: x.auth.Clock().Now,
		OnEvent: func(e *pb.Event) {
			if is := e.GetIssuerUpdated(); is != nil {
				x.issuerEvents <- is
			}
		},
	})
	if err != nil {
		t.Fatalf("StartMirror: %v", err)
	}
	t.Cleanup(stop)
	x.mirror = m
	return x
}

// hang bounds a wait that only a broken build would not end.
const hang = time.Minute

// waitIssuerKey waits until the mirror has an issuer event naming kid.
func (x *externalSetup) waitIssuerKey(t *testing.T, kid string, present bool) {
	t.Helper()
	deadline := time.After(hang)
	for {
		select {
		case is := <-x.issuerEvents:
			has := false
			for _, k := range is.GetKeys() {
				has = has || k.GetKeyId() == kid
			}
			if has == present {
				return
			}
		case <-deadline:
			t.Fatalf("no issuer event with key %s present=%v within %s", kid, present, hang)
		}
	}
}

func login(t *testing.T, idp *testidp.IdP, user string) string {
	t.Helper()
	tok, err := idp.Login(t.Context(), user)
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return tok
}

// TestExternalIssuerAcceptAndBan: a user logs in at a real OpenID
// Provider; the mirror accepts the OP's access token (with no call to the
// OP: it has the keys from the event stream), and so does VerifySession;
// a ban of the user in the issuer's tenant refuses it at once and ends an
// open stream of the user; lifting the ban restores it.
func TestExternalIssuerAcceptAndBan(t *testing.T) {
	x := startExternal(t)
	ctx := t.Context()
	tok := login(t, x.idp, "alice")
	s, err := x.mirror.Check(ctx, tok, client.CheckInput{})
	if err != nil {
		t.Fatalf("Check of the OP's token: %v", err)
	}
	if s.Issuer != x.idp.URL || s.UserID != "alice" || s.TenantID != "acme" || !strings.HasPrefix(s.SessionID, "idp-session-") || s.TokenID == "" {
		t.Fatalf("session: %+v", s)
	}
	if !strings.Contains(s.Claims, `"sid":"`+s.SessionID+`"`) {
		t.Errorf("Claims %s lack the sid", s.Claims)
	}
	vr, err := x.admin.Sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: tok})
	if err != nil || vr.GetSession().GetUserId() != "alice" || vr.GetSession().GetTenantId() != "acme" {
		t.Fatalf("VerifySession: %v, %v", vr, err)
	}

	cut := make(chan error, 1)
	untrack := x.mirror.Track(s, client.CheckInput{}, func(err error) { cut <- err })
	defer untrack()
	ban, err := x.admin.Bans.CreateBan(ctx, &pb.CreateBanRequest{TenantId: "acme",
		Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "alice"}}, Reason: "abuse", Wait: "30s"})
	if err != nil {
		t.Fatalf("CreateBan: %v", err)
	}
	if _, err := x.mirror.Check(ctx, tok, client.CheckInput{}); !errors.Is(err, client.ErrUserBanned) {
		t.Fatalf("Check after the ban: %v, want ErrUserBanned", err)
	}
	select {
	case err := <-cut:
		if !errors.Is(err, client.ErrUserBanned) {
			t.Errorf("stream cut with %v, want ErrUserBanned", err)
		}
	case <-time.After(hang):
		t.Fatal("the open stream of the banned user was not cut")
	}
	_, err = x.admin.Sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: tok})
	wantStatus(t, "VerifySession after the ban", err, codes.PermissionDenied, pb.ErrorReason_USER_BANNED)
	// Another user of the same issuer is not concerned.
	if _, err := x.mirror.Check(ctx, login(t, x.idp, "bob"), client.CheckInput{}); err != nil {
		t.Fatalf("Check of bob: %v", err)
	}
	if _, err := x.admin.Bans.LiftBan(ctx, &pb.LiftBanRequest{BanId: ban.GetBan().GetBanId(), Reason: "appeal", Wait: "30s"}); err != nil {
		t.Fatalf("LiftBan: %v", err)
	}
	if _, err := x.mirror.Check(ctx, tok, client.CheckInput{}); err != nil {
		t.Fatalf("Check after the lift: %v", err)
	}

	// Deleting the issuer refuses its tokens, cached ones included.
	if _, err := x.admin.Issuers.DeleteIssuer(ctx, &pb.DeleteIssuerRequest{Issuer: x.idp.URL}); err != nil {
		t.Fatalf("DeleteIssuer: %v", err)
	}
	wctx, cancel := context.WithTimeout(ctx, hang)
	defer cancel()
	if err := x.mirror.WaitRevision(wctx, x.auth.Revision()); err != nil {
		t.Fatalf("WaitRevision: %v", err)
	}
	if _, err := x.mirror.Check(ctx, tok, client.CheckInput{}); !errors.Is(err, client.ErrTokenInvalid) {
		t.Fatalf("Check after DeleteIssuer: %v, want ErrTokenInvalid", err)
	}
	_, err = x.admin.Sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: tok})
	wantStatus(t, "VerifySession after DeleteIssuer", err, codes.Unauthenticated, pb.ErrorReason_TOKEN_INVALID)
}

// TestExternalIssuerRefusals: what the mirror and VerifySession refuse,
// each with TOKEN_INVALID (or TOKEN_EXPIRED), never a call to the OP.
func TestExternalIssuerRefusals(t *testing.T) {
	x := startExternal(t)
	ctx := t.Context()
	other := testidp.Start(t) // a second OP, trusted for another tenant
	if _, err := x.admin.Issuers.CreateIssuer(ctx, &pb.CreateIssuerRequest{Issuer: &pb.Issuer{
		Issuer: other.URL, TenantId: "other", Audiences: []string{testidp.ClientID},
	}}); err != nil {
		t.Fatalf("CreateIssuer: %v", err)
	}
	x.waitIssuerKey(t, other.KeyID(), true)
	stranger := testidp.Start(t) // never trusted

	now := time.Now()
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": x.idp.URL, "sub": "alice", "sid": "s1", "aud": testidp.ClientID,
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	if _, err := x.mirror.Check(ctx, x.idp.Sign(claims(nil)), client.CheckInput{}); err != nil {
		t.Fatalf("a well-formed token of the OP's key: %v", err)
	}
	seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	payload := seg(`{"iss":"` + x.idp.URL + `","sub":"alice","aud":"svc","exp":` + strconv.FormatInt(now.Add(time.Minute).Unix(), 10) + `}`)
	der, _ := x509.MarshalPKIXPublicKey(x.idp.PublicKey())
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(nil))
	hs.Header["kid"] = x.idp.KeyID()
	hsTok, _ := hs.SignedString(der)
	crossTok := other.Sign(claims(nil)) // other's key and kid, iss of the first OP
	for _, c := range []struct {
		name string
		tok  string
		want error
	}{
		{"alg none", seg(`{"alg":"none","kid":"`+x.idp.KeyID()+`"}`) + "." + payload + ".", client.ErrTokenInvalid},
		{"HS256 with the RSA public key as secret", hsTok, client.ErrTokenInvalid},
		{"kid of another issuer", crossTok, client.ErrTokenInvalid},
		{"iss not configured", login(t, stranger, "alice"), client.ErrTokenInvalid},
		{"wrong aud", x.idp.Sign(claims(func(c jwt.MapClaims) { c["aud"] = "another-api" })), client.ErrTokenInvalid},
		{"expired", x.idp.Sign(claims(func(c jwt.MapClaims) {
			c["iat"], c["exp"] = now.Add(-time.Hour).Unix(), now.Add(-10*time.Minute).Unix()
		})), client.ErrTokenExpired},
		{"nbf in the future", x.idp.Sign(claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(10 * time.Minute).Unix() })), client.ErrTokenInvalid},
		{"lifetime beyond the issuer's max", x.idp.Sign(claims(func(c jwt.MapClaims) { c["exp"] = now.Add(48 * time.Hour).Unix() })), client.ErrTokenInvalid},
		{"no user claim", x.idp.Sign(claims(func(c jwt.MapClaims) { delete(c, "sub") })), client.ErrTokenInvalid},
		{"key the JWKS never had", stranger.Sign(claims(nil)), client.ErrTokenInvalid},
	} {
		if _, err := x.mirror.Check(ctx, c.tok, client.CheckInput{}); !errors.Is(err, c.want) {
			t.Errorf("%s: mirror: %v, want %v", c.name, err, c.want)
		}
		_, err := x.admin.Sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: c.tok})
		reason := pb.ErrorReason_TOKEN_INVALID
		if c.want == client.ErrTokenExpired {
			reason = pb.ErrorReason_TOKEN_EXPIRED
		}
		if v, ok := asStatus(err); !ok || v.reason != reason.String() || v.code != codes.Unauthenticated.String() {
			t.Errorf("%s: VerifySession: %v, want %s", c.name, err, reason)
		}
	}
}

// TestExternalIssuerRecords: bad issuer records are refused with
// INVALID_ARGUMENT (naming the field), a duplicate with ALREADY_EXISTS.
func TestExternalIssuerRecords(t *testing.T) {
	x := startExternal(t)
	ctx := t.Context()
	gone := testidp.Start(t)
	gone.Close()
	for _, c := range []struct {
		name  string
		is    *pb.Issuer
		field string
	}{
		{"http on a non-loopback host", &pb.Issuer{Issuer: "http://idp.example", TenantId: "acme", Audiences: []string{"svc"}}, "issuer"},
		{"HMAC algorithm", &pb.Issuer{Issuer: "https://idp.example", TenantId: "acme", Audiences: []string{"svc"}, Algorithms: []string{"HS256"}}, "algorithms"},
		{"none algorithm", &pb.Issuer{Issuer: "https://idp.example", TenantId: "acme", Audiences: []string{"svc"}, Algorithms: []string{"none"}}, "algorithms"},
		{"unknown algorithm", &pb.Issuer{Issuer: "https://idp.example", TenantId: "acme", Audiences: []string{"svc"}, Algorithms: []string{"RS1"}}, "algorithms"},
		{"no audience", &pb.Issuer{Issuer: "https://idp.example", TenantId: "acme"}, "audiences"},
		{"no tenant", &pb.Issuer{Issuer: "https://idp.example", Audiences: []string{"svc"}}, "tenant_id"},
		{"unreachable discovery", &pb.Issuer{Issuer: gone.URL, TenantId: "acme", Audiences: []string{"svc"}}, "issuer"},
	} {
		_, err := x.admin.Issuers.CreateIssuer(ctx, &pb.CreateIssuerRequest{Issuer: c.is})
		v, ok := asStatus(err)
		if !ok || v.code != codes.InvalidArgument.String() || v.reason != pb.ErrorReason_INVALID_ARGUMENT.String() || v.meta["field"] != c.field {
			t.Errorf("%s: %v (%+v), want InvalidArgument on %s", c.name, err, v, c.field)
		}
	}
	_, err := x.admin.Issuers.CreateIssuer(ctx, &pb.CreateIssuerRequest{Issuer: &pb.Issuer{Issuer: x.idp.URL, TenantId: "acme", Audiences: []string{"svc"}}})
	wantStatus(t, "duplicate issuer", err, codes.AlreadyExists, pb.ErrorReason_ALREADY_EXISTS)
	list, err := x.admin.Issuers.ListIssuers(ctx, &pb.ListIssuersRequest{})
	if err != nil || len(list.GetIssuers()) != 1 || list.GetIssuers()[0].GetFetchStatus().GetLastSuccessTime() == nil {
		t.Fatalf("ListIssuers: %v, %v", list, err)
	}
}

// TestExternalIssuerRotationAndOutage: the OP rotates its key; a token of
// the new key fails closed at the mirror until the authority has
// refetched (VerifySession's unknown kid asks it to), then is accepted;
// the old key's tokens until the OP drops it. When the OP goes away, the
// cached keys keep working, the failure shows in the issuer's status, and
// a key never seen still fails closed.
func TestExternalIssuerRotationAndOutage(t *testing.T) {
	x := startExternal(t)
	ctx := t.Context()
	old := login(t, x.idp, "alice")
	oldKid := x.idp.KeyID()
	x.idp.RotateKey()
	fresh := login(t, x.idp, "alice")
	if _, err := x.mirror.Check(ctx, fresh, client.CheckInput{}); !errors.Is(err, client.ErrTokenInvalid) {
		t.Fatalf("new key before the refetch: %v, want ErrTokenInvalid", err)
	}
	// The authority sees the unknown kid and refetches in the background.
	if _, err := x.admin.Sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: fresh}); err == nil {
		t.Fatal("VerifySession accepted a key it has not fetched")
	}
	x.waitIssuerKey(t, x.idp.KeyID(), true)
	for name, tok := range map[string]string{"new key": fresh, "old key": old} {
		if _, err := x.mirror.Check(ctx, tok, client.CheckInput{}); err != nil {
			t.Fatalf("%s after the refetch: %v", name, err)
		}
	}
	x.idp.DropOldKeys()
	update := func() {
		if _, err := x.admin.Issuers.UpdateIssuer(ctx, &pb.UpdateIssuerRequest{Issuer: &pb.Issuer{
			Issuer: x.idp.URL, TenantId: "acme", Audiences: []string{testidp.ClientID}}}); err != nil {
			t.Fatalf("UpdateIssuer: %v", err)
		}
	}
	update() // refetches
	x.waitIssuerKey(t, oldKid, false)
	if _, err := x.mirror.Check(ctx, old, client.CheckInput{}); !errors.Is(err, client.ErrTokenInvalid) {
		t.Fatalf("old key after the OP dropped it: %v, want ErrTokenInvalid", err)
	}

	x.idp.Close()
	update() // the refetch fails: the keys stay
	got, err := x.admin.Issuers.GetIssuer(ctx, &pb.GetIssuerRequest{Issuer: x.idp.URL})
	if err != nil || got.GetIssuer().GetFetchStatus().GetLastError() == "" || len(got.GetIssuer().GetKeys()) != 1 {
		t.Fatalf("GetIssuer after the outage: %v, %v", got, err)
	}
	if _, err := x.mirror.Check(ctx, fresh, client.CheckInput{}); err != nil {
		t.Fatalf("cached key while the OP is gone: %v", err)
	}
	stranger := testidp.Start(t)
	forged := stranger.Sign(jwt.MapClaims{"iss": x.idp.URL, "sub": "alice", "aud": testidp.ClientID,
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix()})
	if _, err := x.mirror.Check(ctx, forged, client.CheckInput{}); !errors.Is(err, client.ErrTokenInvalid) {
		t.Fatalf("a new kid while the OP is gone: %v, want ErrTokenInvalid", err)
	}
}

// TestExternalIssuerRevocation: revoking an external session by its sid
// refuses its tokens (at the mirror, at VerifySession, and cuts its open
// stream) while another session of the same user stays accepted; revoking
// one token by its jti refuses that token only; both are idempotent.
func TestExternalIssuerRevocation(t *testing.T) {
	x := startExternal(t)
	ctx := t.Context()
	first, second := login(t, x.idp, "alice"), login(t, x.idp, "alice")
	s1, err := x.mirror.Check(ctx, first, client.CheckInput{})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	s2, err := x.mirror.Check(ctx, second, client.CheckInput{})
	if err != nil || s2.SessionID == s1.SessionID {
		t.Fatalf("second session: %+v, %v", s2, err)
	}
	cut := make(chan error, 1)
	defer x.mirror.Track(s1, client.CheckInput{}, func(err error) { cut <- err })()
	for range 2 { // the second time is no error
		resp, err := x.admin.Sessions.RevokeSession(ctx, &pb.RevokeSessionRequest{Issuer: x.idp.URL, SessionId: s1.SessionID, Reason: "stolen laptop", Wait: "30s"})
		if err != nil || resp.GetSession().GetSessionId() != s1.SessionID || resp.GetSession().GetTenantId() != "acme" {
			t.Fatalf("RevokeSession(issuer, sid): %v, %v", resp, err)
		}
	}
	if _, err := x.mirror.Check(ctx, first, client.CheckInput{}); !errors.Is(err, client.ErrSessionRevoked) {
		t.Fatalf("revoked session: %v, want ErrSessionRevoked", err)
	}
	_, err = x.admin.Sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: first})
	wantStatus(t, "VerifySession of the revoked session", err, codes.Unauthenticated, pb.ErrorReason_SESSION_REVOKED)
	select {
	case err := <-cut:
		if !errors.Is(err, client.ErrSessionRevoked) {
			t.Errorf("stream cut with %v", err)
		}
	case <-time.After(hang):
		t.Fatal("the revoked session's open stream was not cut")
	}
	if _, err := x.mirror.Check(ctx, second, client.CheckInput{}); err != nil {
		t.Fatalf("the user's other session: %v", err)
	}

	// One token, by jti: the next token of the same session is accepted.
	if _, err := x.admin.Sessions.RevokeSession(ctx, &pb.RevokeSessionRequest{Issuer: x.idp.URL, TokenId: s2.TokenID, Wait: "30s"}); err != nil {
		t.Fatalf("RevokeSession(issuer, jti): %v", err)
	}
	if _, err := x.mirror.Check(ctx, second, client.CheckInput{}); !errors.Is(err, client.ErrSessionRevoked) {
		t.Fatalf("revoked token: %v, want ErrSessionRevoked", err)
	}
	_, err = x.admin.Sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: second})
	wantStatus(t, "VerifySession of the revoked token", err, codes.Unauthenticated, pb.ErrorReason_SESSION_REVOKED)
	if _, err := x.mirror.Check(ctx, login(t, x.idp, "alice"), client.CheckInput{}); err != nil {
		t.Fatalf("a new session: %v", err)
	}

	// A mirror that starts now gets the revocations in its snapshot.
	m2, stop, err := client.StartMirror(ctx, x.auth.Dial(), client.MirrorOptions{Clock: x.auth.Clock().Now})
	if err != nil {
		t.Fatalf("StartMirror: %v", err)
	}
	defer stop()
	for name, tok := range map[string]string{"session": first, "token": second} {
		if _, err := m2.Check(ctx, tok, client.CheckInput{}); !errors.Is(err, client.ErrSessionRevoked) {
			t.Errorf("new mirror, revoked %s: %v", name, err)
		}
	}

	_, err = x.admin.Sessions.RevokeSession(ctx, &pb.RevokeSessionRequest{Issuer: "https://unknown.example", SessionId: "s"})
	wantStatus(t, "unknown issuer", err, codes.NotFound, pb.ErrorReason_NOT_FOUND)
	_, err = x.admin.Sessions.RevokeSession(ctx, &pb.RevokeSessionRequest{Issuer: x.idp.URL, SessionId: "s", TokenId: "t"})
	wantStatus(t, "both sid and jti", err, codes.InvalidArgument, pb.ErrorReason_INVALID_ARGUMENT)
}

// TestExternalIssuerReplicas: two replicas over one etcd store; an issuer
// added through one is used by the mirror of the other, and a ban made on
// the first refuses the token at that mirror.
func TestExternalIssuerReplicas(t *testing.T) {
	idp := testidp.Start(t)
	rs, _ := startReplicas(t, 2, authoritytest.WallClock())
	ctx := t.Context()
	m, stop, err := client.StartMirror(ctx, rs[1].Dial(), client.MirrorOptions{Clock: rs[1].Clock().Now})
	if err != nil {
		t.Fatalf("StartMirror on replica 2: %v", err)
	}
	defer stop()
	if _, err := rs[0].admin.Issuers.CreateIssuer(ctx, &pb.CreateIssuerRequest{Issuer: &pb.Issuer{
		Issuer: idp.URL, TenantId: "acme", Audiences: []string{testidp.ClientID}}}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("CreateIssuer on replica 1: %v", err)
	}
	tok := login(t, idp, "alice")
	// The issuer's event reaches replica 2's mirror: wait for it on the
	// authority's revision, then check.
	wctx, cancel := context.WithTimeout(ctx, hang)
	defer cancel()
	if err := m.WaitRevision(wctx, rs[0].Revision()); err != nil {
		t.Fatalf("WaitRevision: %v", err)
	}
	if _, err := m.Check(ctx, tok, client.CheckInput{}); err != nil {
		t.Fatalf("replica 2's mirror, issuer added on replica 1: %v", err)
	}
	if _, err := rs[0].admin.Bans.CreateBan(ctx, &pb.CreateBanRequest{TenantId: "acme",
		Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "alice"}}, Wait: "30s"}); err != nil {
		t.Fatalf("CreateBan: %v", err)
	}
	if _, err := m.Check(ctx, tok, client.CheckInput{}); !errors.Is(err, client.ErrUserBanned) {
		t.Fatalf("after a ban on replica 1: %v, want ErrUserBanned", err)
	}
}
