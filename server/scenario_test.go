package server_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
)

func userBan(tenant, user string) *pb.CreateBanRequest {
	return &pb.CreateBanRequest{TenantId: tenant, Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: user}}}
}

// TestBanLifecycle is the README walkthrough: session, verify, ban (which
// revokes the session), everything refused with USER_BANNED, the ban listed
// and audited, lifted, and a new session allowed.
func TestBanLifecycle(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := e.admin()
	s := e.login(&pb.CreateSessionRequest{UserId: "alice", ClientIp: "203.0.113.7", DeviceId: "phone-1"})
	if s.GetSession().GetTenantId() != authority.DefaultTenant {
		t.Fatalf("tenant %q, want the default", s.GetSession().GetTenantId())
	}
	v, err := e.sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: s.GetAccessToken()})
	if err != nil || v.GetSession().GetSessionId() != s.GetSession().GetSessionId() {
		t.Fatalf("VerifySession = %v, %v", v, err)
	}

	req := userBan("", "alice")
	req.Reason, req.Policy, req.Duration = "spam", "tos-4.2", "7d"
	ban, err := e.bans.CreateBan(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if ban.GetRevokedSessions() != 1 {
		t.Fatalf("revoked %d sessions, want 1", ban.GetRevokedSessions())
	}
	banID := ban.GetBan().GetBanId()
	wantExpire := e.clock.Now().Add(7 * 24 * time.Hour)
	if got := ban.GetBan().GetExpireTime().AsTime(); !got.Equal(wantExpire) {
		t.Fatalf("expire_time %v, want %v", got, wantExpire)
	}

	checkBanned := func(err error) {
		t.Helper()
		info := wantStatus(t, err, codes.PermissionDenied, "USER_BANNED")
		if info.GetMetadata()["ban_id"] != banID || info.GetMetadata()["expire_time"] != wantExpire.Format(time.RFC3339) {
			t.Fatalf("metadata %v, want ban_id %s expire_time %s", info.GetMetadata(), banID, wantExpire.Format(time.RFC3339))
		}
	}
	_, err = e.sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: s.GetAccessToken()})
	checkBanned(err)
	_, err = e.sessions.RefreshSession(context.Background(), &pb.RefreshSessionRequest{RefreshToken: s.GetRefreshToken()})
	wantStatus(t, err, codes.Unauthenticated, "SESSION_REVOKED") // the ban revoked the session itself
	_, err = e.sessions.CreateSession(ctx, &pb.CreateSessionRequest{UserId: "alice"})
	checkBanned(err)
	// Another tenant is not affected by a ban in "public".
	e.login(&pb.CreateSessionRequest{TenantId: "acme", UserId: "alice"})

	list, err := e.bans.ListBans(ctx, &pb.ListBansRequest{State: pb.BanState_BAN_STATE_ACTIVE})
	if err != nil || len(list.GetBans()) != 1 || list.GetBans()[0].GetBanId() != banID {
		t.Fatalf("ListBans = %v, %v", list, err)
	}
	aud, err := e.audit.ListAuditRecords(ctx, &pb.ListAuditRecordsRequest{Subject: "user:alice", Action: "ban.create"})
	if err != nil || len(aud.GetRecords()) != 1 {
		t.Fatalf("audit = %v, %v", aud, err)
	}
	r := aud.GetRecords()[0]
	if r.GetTargetId() != banID || r.GetActor() != authority.BootstrapKeyName || r.GetPolicy() != "tos-4.2" ||
		r.GetReason() != "spam" || r.GetDetails()["revoked_sessions"] != "1" || r.GetActorAddress() == "" ||
		r.GetChannel() != authority.ChannelGRPC {
		t.Fatalf("audit record %v", r)
	}

	lifted, err := e.bans.LiftBan(ctx, &pb.LiftBanRequest{BanId: banID, Reason: "appeal"})
	if err != nil {
		t.Fatal(err)
	}
	if lifted.GetBan().GetState() != pb.BanState_BAN_STATE_LIFTED || lifted.GetBan().GetLiftedBy() != authority.BootstrapKeyName ||
		lifted.GetBan().GetLiftReason() != "appeal" {
		t.Fatalf("lifted ban %v", lifted.GetBan())
	}
	got, err := e.bans.GetBan(ctx, &pb.GetBanRequest{BanId: banID})
	if err != nil || got.GetBan().GetReason() != "spam" || got.GetBan().GetLiftTime() == nil {
		t.Fatalf("GetBan after lift = %v, %v (the record must stay)", got, err)
	}
	e.login(&pb.CreateSessionRequest{UserId: "alice"})
}

// TestTemporaryBanExpiresByItself: a "2s" ban stops applying when the clock
// passes its expiry, with nothing run in between.
func TestTemporaryBanExpiresByItself(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := e.admin()
	req := &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_Ip{Ip: "198.51.100.0/24"}}, Duration: "2s"}
	if _, err := e.bans.CreateBan(ctx, req); err != nil {
		t.Fatal(err)
	}
	_, err := e.sessions.CreateSession(ctx, &pb.CreateSessionRequest{UserId: "bob", ClientIp: "198.51.100.9"})
	wantStatus(t, err, codes.PermissionDenied, "IP_BANNED")
	e.login(&pb.CreateSessionRequest{UserId: "bob", ClientIp: "198.51.101.9"}) // outside the prefix

	e.clock.Advance(2 * time.Second)
	e.login(&pb.CreateSessionRequest{UserId: "bob", ClientIp: "198.51.100.9"})
	check, err := e.bans.CheckBan(ctx, &pb.CheckBanRequest{Ip: "198.51.100.9"})
	if err != nil || check.GetBanned() {
		t.Fatalf("CheckBan after expiry = %v, %v", check, err)
	}
	list, err := e.bans.ListBans(ctx, &pb.ListBansRequest{State: pb.BanState_BAN_STATE_EXPIRED})
	if err != nil || len(list.GetBans()) != 1 {
		t.Fatalf("ListBans(expired) = %v, %v", list, err)
	}
}

// TestBanKinds covers device, IPv6 prefix, "*" tenant, absolute expiry and
// capability bans, and what CheckBan and VerifySession say about each.
func TestBanKinds(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := e.admin()
	onDevice := e.login(&pb.CreateSessionRequest{TenantId: "acme", UserId: "carol", DeviceId: "dev-9"})
	fromV6 := e.login(&pb.CreateSessionRequest{TenantId: "acme", UserId: "dave", ClientIp: "2001:db8:1::5"})
	elsewhere := e.login(&pb.CreateSessionRequest{TenantId: "other", UserId: "erin"})
	poster := e.login(&pb.CreateSessionRequest{TenantId: "acme", UserId: "frank"})

	b, err := e.bans.CreateBan(ctx, &pb.CreateBanRequest{TenantId: "acme", Subject: &pb.Subject{Kind: &pb.Subject_DeviceId{DeviceId: "dev-9"}}})
	if err != nil || b.GetRevokedSessions() != 1 {
		t.Fatalf("device ban = %v, %v", b, err)
	}
	_, err = e.sessions.CreateSession(ctx, &pb.CreateSessionRequest{TenantId: "acme", UserId: "zed", DeviceId: "dev-9"})
	wantStatus(t, err, codes.PermissionDenied, "DEVICE_BANNED")
	_, err = e.sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: onDevice.GetAccessToken()})
	wantStatus(t, err, codes.PermissionDenied, "DEVICE_BANNED")

	exp := timestamppb.New(e.clock.Now().Add(time.Hour))
	b, err = e.bans.CreateBan(ctx, &pb.CreateBanRequest{TenantId: "*", Subject: &pb.Subject{Kind: &pb.Subject_Ip{Ip: "2001:db8::/32"}}, ExpireTime: exp})
	if err != nil || b.GetRevokedSessions() != 1 || b.GetBan().GetSubject().GetIp() != "2001:db8::/32" {
		t.Fatalf("IPv6 ban = %v, %v", b, err)
	}
	_, err = e.sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: fromV6.GetAccessToken()})
	wantStatus(t, err, codes.Unauthenticated, "SESSION_REVOKED")
	// A "*" ban applies in every tenant, to a client address given at verify time too.
	_, err = e.sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: elsewhere.GetAccessToken(), ClientIp: "2001:db8:ffff::1"})
	wantStatus(t, err, codes.PermissionDenied, "IP_BANNED")
	if _, err := e.sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: elsewhere.GetAccessToken(), ClientIp: "2001:db9::1"}); err != nil {
		t.Fatal(err)
	}

	b, err = e.bans.CreateBan(ctx, &pb.CreateBanRequest{TenantId: "acme", Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "frank"}}, Capabilities: []string{"post", "comment"}})
	if err != nil || b.GetRevokedSessions() != 0 {
		t.Fatalf("capability ban = %v, %v", b, err)
	}
	if _, err := e.sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: poster.GetAccessToken(), Capability: "read"}); err != nil {
		t.Fatal(err)
	}
	_, err = e.sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: poster.GetAccessToken(), Capability: "post"})
	info := wantStatus(t, err, codes.PermissionDenied, "CAPABILITY_RESTRICTED")
	if info.GetMetadata()["capability"] != "post" || info.GetMetadata()["ban_id"] != b.GetBan().GetBanId() || info.GetMetadata()["expire_time"] != "" {
		t.Fatalf("metadata %v", info.GetMetadata())
	}
	e.login(&pb.CreateSessionRequest{TenantId: "acme", UserId: "frank"}) // a capability ban does not block login
	c, err := e.bans.CheckBan(ctx, &pb.CheckBanRequest{TenantId: "acme", UserId: "frank"})
	if err != nil || c.GetBanned() || len(c.GetBans()) != 1 {
		t.Fatalf("CheckBan(frank) = %v, %v", c, err)
	}
	c, err = e.bans.CheckBan(ctx, &pb.CheckBanRequest{TenantId: "acme", UserId: "frank", Capability: "comment"})
	if err != nil || !c.GetBanned() {
		t.Fatalf("CheckBan(frank, comment) = %v, %v", c, err)
	}
}

// TestRefreshRotationAndTheft: each refresh rotates; presenting a
// superseded token revokes the session for both holders.
func TestRefreshRotationAndTheft(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background() // RefreshSession needs no API key
	s := e.login(&pb.CreateSessionRequest{UserId: "gina"})
	r1, err := e.sessions.RefreshSession(ctx, &pb.RefreshSessionRequest{RefreshToken: s.GetRefreshToken()})
	if err != nil {
		t.Fatal(err)
	}
	if r1.GetRefreshToken() == s.GetRefreshToken() || r1.GetAccessToken() == "" {
		t.Fatal("refresh did not rotate")
	}
	r2, err := e.sessions.RefreshSession(ctx, &pb.RefreshSessionRequest{RefreshToken: r1.GetRefreshToken()})
	if err != nil {
		t.Fatal(err)
	}
	// The thief replays the first token.
	_, err = e.sessions.RefreshSession(ctx, &pb.RefreshSessionRequest{RefreshToken: s.GetRefreshToken()})
	wantStatus(t, err, codes.Unauthenticated, "TOKEN_THEFT_DETECTED")
	// The victim's current token is dead too, and so is its access token.
	_, err = e.sessions.RefreshSession(ctx, &pb.RefreshSessionRequest{RefreshToken: r2.GetRefreshToken()})
	wantStatus(t, err, codes.Unauthenticated, "SESSION_REVOKED")
	_, err = e.sessions.VerifySession(e.admin(), &pb.VerifySessionRequest{AccessToken: r2.GetAccessToken()})
	wantStatus(t, err, codes.Unauthenticated, "SESSION_REVOKED")
	aud, err := e.audit.ListAuditRecords(e.admin(), &pb.ListAuditRecordsRequest{Action: "session.theft"})
	if err != nil || len(aud.GetRecords()) != 1 {
		t.Fatalf("theft audit = %v, %v", aud, err)
	}
}

// TestTokenExpiryAndKeyRotation: access tokens expire by the clock; a
// rotated-out key keeps verifying its tokens until they expire.
func TestTokenExpiryAndKeyRotation(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := e.admin()
	old := e.login(&pb.CreateSessionRequest{UserId: "hank"})
	rot, err := e.keys.RotateKey(ctx, &pb.RotateKeyRequest{Reason: "scheduled"})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := e.keys.ListKeys(ctx, &pb.ListKeysRequest{})
	if err != nil || len(keys.GetKeys()) != 2 || keys.GetKeys()[0].GetKeyId() != rot.GetKey().GetKeyId() {
		t.Fatalf("ListKeys = %v, %v", keys, err)
	}
	fresh := e.login(&pb.CreateSessionRequest{UserId: "hank"})
	for _, tok := range []string{old.GetAccessToken(), fresh.GetAccessToken()} {
		if _, err := e.sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: tok}); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Advance(authority.DefaultAccessTTL)
	_, err = e.sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: fresh.GetAccessToken()})
	wantStatus(t, err, codes.Unauthenticated, "TOKEN_EXPIRED")
	// The old key is gone with its last token: its tokens no longer verify at all.
	_, err = e.sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: old.GetAccessToken()})
	wantStatus(t, err, codes.Unauthenticated, "TOKEN_INVALID")
	keys, err = e.keys.ListKeys(ctx, &pb.ListKeysRequest{})
	if err != nil || len(keys.GetKeys()) != 1 {
		t.Fatalf("after the old key's tokens expired, ListKeys = %v, %v", keys, err)
	}
	// Refresh still works and issues a token of the new key.
	r, err := e.sessions.RefreshSession(context.Background(), &pb.RefreshSessionRequest{RefreshToken: old.GetRefreshToken()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: r.GetAccessToken()}); err != nil {
		t.Fatal(err)
	}
}

// TestRevokeSessions covers RevokeSession, RevokeUserSessions and
// ListSessions paging.
func TestRevokeSessions(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := e.admin()
	var ids []string
	for range 5 {
		ids = append(ids, e.login(&pb.CreateSessionRequest{UserId: "ivan"}).GetSession().GetSessionId())
	}
	other := e.login(&pb.CreateSessionRequest{UserId: "judy"})
	if _, err := e.sessions.RevokeSession(ctx, &pb.RevokeSessionRequest{SessionId: ids[0], Reason: "lost phone"}); err != nil {
		t.Fatal(err)
	}
	n, err := e.sessions.RevokeUserSessions(ctx, &pb.RevokeUserSessionsRequest{UserId: "ivan", Reason: "password reset"})
	if err != nil || n.GetRevokedSessions() != 4 {
		t.Fatalf("RevokeUserSessions = %v, %v", n, err)
	}
	var seen []string
	token := ""
	for {
		page, err := e.sessions.ListSessions(ctx, &pb.ListSessionsRequest{TenantId: "public", UserId: "ivan", IncludeInactive: true, PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page.GetSessions() {
			if s.GetRevokeTime() == nil {
				t.Fatalf("session %s not revoked", s.GetSessionId())
			}
			seen = append(seen, s.GetSessionId())
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(seen) != 5 {
		t.Fatalf("paged through %d sessions, want 5", len(seen))
	}
	live, err := e.sessions.ListSessions(ctx, &pb.ListSessionsRequest{})
	if err != nil || len(live.GetSessions()) != 1 || live.GetSessions()[0].GetSessionId() != other.GetSession().GetSessionId() {
		t.Fatalf("live sessions = %v, %v", live, err)
	}
}

// TestScopes: a key can do what its scopes allow and nothing else; missing
// or unknown keys are Unauthenticated; RefreshSession needs no key.
func TestScopes(t *testing.T) {
	e := newEnv(t, envOptions{})
	reader := as(e.keyWith("ban-reader", authority.ScopeBansRead))
	if _, err := e.bans.ListBans(reader, &pb.ListBansRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err := e.bans.CreateBan(reader, userBan("", "kim"))
	wantStatus(t, err, codes.PermissionDenied, "PERMISSION_DENIED")
	_, err = e.bans.ListBans(context.Background(), &pb.ListBansRequest{})
	wantStatus(t, err, codes.Unauthenticated, "API_KEY_INVALID")
	_, err = e.bans.ListBans(as("pcl_nope_nope"), &pb.ListBansRequest{})
	wantStatus(t, err, codes.Unauthenticated, "API_KEY_INVALID")
	_, err = e.bans.ListBans(as(e.adminKey+"x"), &pb.ListBansRequest{})
	wantStatus(t, err, codes.Unauthenticated, "API_KEY_INVALID")

	// Revocation takes effect on the next call.
	keys, err := e.apiKeys.ListAPIKeys(e.admin(), &pb.ListAPIKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys.GetApiKeys() {
		if k.GetName() == "ban-reader" {
			if _, err := e.apiKeys.RevokeAPIKey(e.admin(), &pb.RevokeAPIKeyRequest{ApiKeyId: k.GetApiKeyId()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, err = e.bans.ListBans(reader, &pb.ListBansRequest{})
	wantStatus(t, err, codes.Unauthenticated, "API_KEY_INVALID")

	denied, err := e.audit.ListAuditRecords(e.admin(), &pb.ListAuditRecordsRequest{Action: "call.denied"})
	if err != nil || len(denied.GetRecords()) != 5 {
		t.Fatalf("denied-call audit records = %d, %v; want 5", len(denied.GetRecords()), err)
	}
}
