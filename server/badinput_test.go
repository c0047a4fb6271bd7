package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/token"
)

// badInputState is what TestBadInputChangesNothing builds before its table.
type badInputState struct {
	live, revoked       *pb.CreateSessionResponse
	ban, lifted         *pb.Ban
	keyID               string
	bansToken           string // next_page_token of ListBans{page_size: 1}
	sessionsToken       string // of ListSessions{include_inactive, page_size: 1}
	auditToken          string // of ListAuditRecords{page_size: 1}
	accessToken         string // a valid access token of live
	foreignToken        string // well-formed, signed by a key the authority never had
	foreignSameKidToken string // ditto, but naming the authority's own kid
}

func setupBadInputState(t *testing.T, e *env) badInputState {
	t.Helper()
	ctx := e.admin()
	var st badInputState
	st.live = e.login(&pb.CreateSessionRequest{UserId: "alice", ClientIp: "203.0.113.7", DeviceId: "d1"})
	st.revoked = e.login(&pb.CreateSessionRequest{UserId: "bob"})
	if _, err := e.sessions.RevokeSession(ctx, &pb.RevokeSessionRequest{SessionId: st.revoked.GetSession().GetSessionId(), Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	st.accessToken = st.live.GetAccessToken()

	b1, err := e.bans.CreateBan(ctx, &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "mallory"}}, Duration: "7d", Reason: "spam"})
	if err != nil {
		t.Fatal(err)
	}
	st.ban = b1.GetBan()
	b2, err := e.bans.CreateBan(ctx, &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_Ip{Ip: "198.51.100.0/24"}}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := e.bans.LiftBan(ctx, &pb.LiftBanRequest{BanId: b2.GetBan().GetBanId(), Reason: "appeal"})
	if err != nil {
		t.Fatal(err)
	}
	st.lifted = l.GetBan()

	lb, err := e.bans.ListBans(ctx, &pb.ListBansRequest{PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := e.sessions.ListSessions(ctx, &pb.ListSessionsRequest{IncludeInactive: true, PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	la, err := e.audit.ListAuditRecords(ctx, &pb.ListAuditRecordsRequest{PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	st.bansToken, st.sessionsToken, st.auditToken = lb.GetNextPageToken(), ls.GetNextPageToken(), la.GetNextPageToken()
	if st.bansToken == "" || st.sessionsToken == "" || st.auditToken == "" {
		t.Fatalf("want a next_page_token from every listing, got %q %q %q", st.bansToken, st.sessionsToken, st.auditToken)
	}

	keys, err := e.keys.ListKeys(ctx, &pb.ListKeysRequest{})
	if err != nil || len(keys.GetKeys()) == 0 {
		t.Fatalf("ListKeys: %v, %d keys", err, len(keys.GetKeys()))
	}
	st.keyID = keys.GetKeys()[0].GetKeyId()
	st.foreignToken = foreignToken(t, e, st.live.GetSession(), "key_foreign")
	st.foreignSameKidToken = foreignToken(t, e, st.live.GetSession(), st.keyID)
	return st
}

// foreignToken signs, with a fresh Ed25519 key, a token that is otherwise
// exactly what the authority would issue for sess.
func foreignToken(t *testing.T, e *env, sess *pb.Session, kid string) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	tok, err := token.Sign(&token.Claims{
		SessionID: sess.GetSessionId(), TenantID: sess.GetTenantId(), DeviceID: sess.GetDeviceId(),
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: authority.DefaultIssuer, Subject: sess.GetUserId(), Audience: jwt.ClaimStrings{authority.DefaultAudience},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)),
		},
	}, kid, priv)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// badCase is one row of the bad-input tables.
type badCase struct {
	name   string
	call   func(ctx context.Context) error
	code   codes.Code
	reason string
	field  string // wanted ErrorInfo metadata "field" (InvalidArgument / INVALID_ARGUMENT only)
}

func userSubject(u string) *pb.Subject { return &pb.Subject{Kind: &pb.Subject_UserId{UserId: u}} }
func ipSubject(ip string) *pb.Subject  { return &pb.Subject{Kind: &pb.Subject_Ip{Ip: ip}} }

// TestBadInputChangesNothing sends malformed, unknown or conflicting
// requests and checks that each gets its documented status and ErrorInfo
// (never Unknown) and leaves the store exactly as it was.
func TestBadInputChangesNothing(t *testing.T) {
	e := newEnv(t, envOptions{})
	st := setupBadInputState(t, e)
	s, b, a, ev := e.sessions, e.bans, e.audit, e.events

	const (
		inval    = "INVALID_ARGUMENT"
		badToken = "INVALID_PAGE_TOKEN"
	)
	attrs17 := map[string]string{}
	for i := range 17 {
		attrs17[fmt.Sprintf("k%d", i)] = "v"
	}
	past := timestamppb.New(e.clock.Now().Add(-time.Minute))
	future := timestamppb.New(e.clock.Now().Add(time.Hour))
	createSession := func(req *pb.CreateSessionRequest) func(context.Context) error {
		return func(ctx context.Context) error { _, err := s.CreateSession(ctx, req); return err }
	}
	createBan := func(req *pb.CreateBanRequest) func(context.Context) error {
		return func(ctx context.Context) error { _, err := b.CreateBan(ctx, req); return err }
	}
	listBans := func(req *pb.ListBansRequest) func(context.Context) error {
		return func(ctx context.Context) error { _, err := b.ListBans(ctx, req); return err }
	}
	listSessions := func(req *pb.ListSessionsRequest) func(context.Context) error {
		return func(ctx context.Context) error { _, err := s.ListSessions(ctx, req); return err }
	}
	listAudit := func(req *pb.ListAuditRecordsRequest) func(context.Context) error {
		return func(ctx context.Context) error { _, err := a.ListAuditRecords(ctx, req); return err }
	}
	verify := func(tok string) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := s.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: tok})
			return err
		}
	}
	refresh := func(tok string) func(context.Context) error {
		return func(context.Context) error {
			// No API key: RefreshSession is authorised by the token alone.
			_, err := s.RefreshSession(context.Background(), &pb.RefreshSessionRequest{RefreshToken: tok})
			return err
		}
	}

	cases := []badCase{
		// CreateSession.
		{"CreateSession/no user_id", createSession(&pb.CreateSessionRequest{}), codes.InvalidArgument, inval, "user_id"},
		{"CreateSession/tenant *", createSession(&pb.CreateSessionRequest{UserId: "u", TenantId: "*"}), codes.InvalidArgument, inval, "tenant_id"},
		{"CreateSession/17 attributes", createSession(&pb.CreateSessionRequest{UserId: "u", Attributes: attrs17}), codes.InvalidArgument, inval, "attributes"},
		{"CreateSession/300-byte attribute", createSession(&pb.CreateSessionRequest{UserId: "u", Attributes: map[string]string{"k": strings.Repeat("x", 300)}}), codes.InvalidArgument, inval, "attributes"},
		{"CreateSession/client_ip 300.1.1.1", createSession(&pb.CreateSessionRequest{UserId: "u", ClientIp: "300.1.1.1"}), codes.InvalidArgument, inval, "client_ip"},
		{"CreateSession/client_ip IPv4-mapped", createSession(&pb.CreateSessionRequest{UserId: "u", ClientIp: "::ffff:1.2.3.4"}), codes.InvalidArgument, inval, "client_ip"},
		{"CreateSession/user_id with a newline", createSession(&pb.CreateSessionRequest{UserId: "a\nb"}), codes.InvalidArgument, inval, "user_id"},
		{"CreateSession/oversized user_id", createSession(&pb.CreateSessionRequest{UserId: strings.Repeat("u", 300)}), codes.InvalidArgument, inval, "user_id"},
		{"CreateSession/client_ip zoned", createSession(&pb.CreateSessionRequest{UserId: "u", ClientIp: "fe80::1%eth0"}), codes.InvalidArgument, inval, "client_ip"},

		// CreateBan.
		{"CreateBan/no subject", createBan(&pb.CreateBanRequest{}), codes.InvalidArgument, inval, "subject"},
		{"CreateBan/empty subject message", createBan(&pb.CreateBanRequest{Subject: &pb.Subject{}}), codes.InvalidArgument, inval, "subject"},
		{"CreateBan/empty user_id", createBan(&pb.CreateBanRequest{Subject: userSubject("")}), codes.InvalidArgument, inval, "subject.user_id"},
		{"CreateBan/empty device_id", createBan(&pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_DeviceId{}}}), codes.InvalidArgument, inval, "subject.device_id"},
		{"CreateBan/empty ip", createBan(&pb.CreateBanRequest{Subject: ipSubject("")}), codes.InvalidArgument, inval, "subject.ip"},
		{"CreateBan/cidr /33", createBan(&pb.CreateBanRequest{Subject: ipSubject("10.0.0.0/33")}), codes.InvalidArgument, inval, "subject.ip"},
		{"CreateBan/cidr host bits", createBan(&pb.CreateBanRequest{Subject: ipSubject("10.1.2.3/8")}), codes.InvalidArgument, inval, "subject.ip"},
		{"CreateBan/cidr /0", createBan(&pb.CreateBanRequest{Subject: ipSubject("0.0.0.0/0")}), codes.InvalidArgument, inval, "subject.ip"},
		{"CreateBan/cidr ::/0", createBan(&pb.CreateBanRequest{Subject: ipSubject("::/0")}), codes.InvalidArgument, inval, "subject.ip"},
		{"CreateBan/ip IPv4-mapped", createBan(&pb.CreateBanRequest{Subject: ipSubject("::ffff:1.2.3.4")}), codes.InvalidArgument, inval, "subject.ip"},
		{"CreateBan/cidr IPv4-mapped", createBan(&pb.CreateBanRequest{Subject: ipSubject("::ffff:10.0.0.0/104")}), codes.InvalidArgument, inval, "subject.ip"},
		{"CreateBan/ip zoned", createBan(&pb.CreateBanRequest{Subject: ipSubject("fe80::1%eth0")}), codes.InvalidArgument, inval, "subject.ip"},
		{"CreateBan/ip garbage", createBan(&pb.CreateBanRequest{Subject: ipSubject("not-an-ip")}), codes.InvalidArgument, inval, "subject.ip"},
		{"CreateBan/duration -5m", createBan(&pb.CreateBanRequest{Subject: userSubject("u"), Duration: "-5m"}), codes.InvalidArgument, inval, "duration"},
		{"CreateBan/duration 0s", createBan(&pb.CreateBanRequest{Subject: userSubject("u"), Duration: "0s"}), codes.InvalidArgument, inval, "duration"},
		{"CreateBan/duration abc", createBan(&pb.CreateBanRequest{Subject: userSubject("u"), Duration: "abc"}), codes.InvalidArgument, inval, "duration"},
		{"CreateBan/duration 5x", createBan(&pb.CreateBanRequest{Subject: userSubject("u"), Duration: "5x"}), codes.InvalidArgument, inval, "duration"},
		{"CreateBan/duration 200 years", createBan(&pb.CreateBanRequest{Subject: userSubject("u"), Duration: "73000d"}), codes.InvalidArgument, inval, "duration"},
		{"CreateBan/duration and expire_time", createBan(&pb.CreateBanRequest{Subject: userSubject("u"), Duration: "1h", ExpireTime: future}), codes.InvalidArgument, inval, "duration"},
		{"CreateBan/expire_time in the past", createBan(&pb.CreateBanRequest{Subject: userSubject("u"), ExpireTime: past}), codes.InvalidArgument, inval, "expire_time"},
		{"CreateBan/expire_time now", createBan(&pb.CreateBanRequest{Subject: userSubject("u"), ExpireTime: timestamppb.New(e.clock.Now())}), codes.InvalidArgument, inval, "expire_time"},
		{"CreateBan/capability with a space", createBan(&pb.CreateBanRequest{Subject: userSubject("u"), Capabilities: []string{"post comment"}}), codes.InvalidArgument, inval, "capabilities"},
		{"CreateBan/empty capability", createBan(&pb.CreateBanRequest{Subject: userSubject("u"), Capabilities: []string{""}}), codes.InvalidArgument, inval, "capabilities"},
		{"CreateBan/bad tenant", createBan(&pb.CreateBanRequest{Subject: userSubject("u"), TenantId: " t"}), codes.InvalidArgument, inval, "tenant_id"},
		{"CreateBan/oversized reason", createBan(&pb.CreateBanRequest{Subject: userSubject("u"), Reason: strings.Repeat("r", 2000)}), codes.InvalidArgument, inval, "reason"},

		// LiftBan, GetBan.
		{"LiftBan/unknown", func(ctx context.Context) error {
			_, err := b.LiftBan(ctx, &pb.LiftBanRequest{BanId: "ban_doesnotexist"})
			return err
		}, codes.NotFound, "NOT_FOUND", ""},
		{"LiftBan/empty id", func(ctx context.Context) error {
			_, err := b.LiftBan(ctx, &pb.LiftBanRequest{})
			return err
		}, codes.InvalidArgument, inval, "ban_id"},
		{"LiftBan/already lifted", func(ctx context.Context) error {
			_, err := b.LiftBan(ctx, &pb.LiftBanRequest{BanId: st.lifted.GetBanId(), Reason: "again"})
			return err
		}, codes.FailedPrecondition, "BAN_ALREADY_LIFTED", ""},
		{"GetBan/unknown", func(ctx context.Context) error {
			_, err := b.GetBan(ctx, &pb.GetBanRequest{BanId: "ban_doesnotexist"})
			return err
		}, codes.NotFound, "NOT_FOUND", ""},
		{"GetBan/empty id", func(ctx context.Context) error {
			_, err := b.GetBan(ctx, &pb.GetBanRequest{})
			return err
		}, codes.InvalidArgument, inval, "ban_id"},

		// GetSession, RevokeSession.
		{"GetSession/unknown", func(ctx context.Context) error {
			_, err := s.GetSession(ctx, &pb.GetSessionRequest{SessionId: "ses_doesnotexist"})
			return err
		}, codes.NotFound, "NOT_FOUND", ""},
		{"GetSession/empty id", func(ctx context.Context) error {
			_, err := s.GetSession(ctx, &pb.GetSessionRequest{})
			return err
		}, codes.InvalidArgument, inval, "session_id"},
		{"RevokeSession/empty id", func(ctx context.Context) error {
			_, err := s.RevokeSession(ctx, &pb.RevokeSessionRequest{})
			return err
		}, codes.InvalidArgument, inval, "session_id"},
		{"RevokeSession/unknown", func(ctx context.Context) error {
			_, err := s.RevokeSession(ctx, &pb.RevokeSessionRequest{SessionId: "ses_doesnotexist"})
			return err
		}, codes.NotFound, "NOT_FOUND", ""},
		{"RevokeSession/already revoked", func(ctx context.Context) error {
			_, err := s.RevokeSession(ctx, &pb.RevokeSessionRequest{SessionId: st.revoked.GetSession().GetSessionId()})
			return err
		}, codes.FailedPrecondition, "SESSION_ALREADY_REVOKED", ""},
		{"RevokeUserSessions/no user_id", func(ctx context.Context) error {
			_, err := s.RevokeUserSessions(ctx, &pb.RevokeUserSessionsRequest{})
			return err
		}, codes.InvalidArgument, inval, "user_id"},

		// Paging.
		{"ListBans/garbage token", listBans(&pb.ListBansRequest{PageToken: "zzz"}), codes.InvalidArgument, badToken, ""},
		{"ListSessions/garbage token", listSessions(&pb.ListSessionsRequest{PageToken: "zzz"}), codes.InvalidArgument, badToken, ""},
		{"ListAuditRecords/garbage token", listAudit(&pb.ListAuditRecordsRequest{PageToken: "zzz"}), codes.InvalidArgument, badToken, ""},
		{"ListSessions/ListBans token", listSessions(&pb.ListSessionsRequest{PageToken: st.bansToken}), codes.InvalidArgument, badToken, ""},
		{"ListAuditRecords/ListBans token", listAudit(&pb.ListAuditRecordsRequest{PageToken: st.bansToken}), codes.InvalidArgument, badToken, ""},
		{"ListBans/ListSessions token", listBans(&pb.ListBansRequest{PageToken: st.sessionsToken}), codes.InvalidArgument, badToken, ""},
		{"ListBans/token with other filters", listBans(&pb.ListBansRequest{PageToken: st.bansToken, State: pb.BanState_BAN_STATE_ACTIVE}), codes.InvalidArgument, badToken, ""},
		{"ListSessions/token with other filters", listSessions(&pb.ListSessionsRequest{PageToken: st.sessionsToken}), codes.InvalidArgument, badToken, ""},
		{"ListAuditRecords/token with other filters", listAudit(&pb.ListAuditRecordsRequest{PageToken: st.auditToken, Action: "ban.create"}), codes.InvalidArgument, badToken, ""},
		{"ListBans/negative page_size", listBans(&pb.ListBansRequest{PageSize: -1}), codes.InvalidArgument, inval, "page_size"},
		{"ListSessions/negative page_size", listSessions(&pb.ListSessionsRequest{PageSize: -1}), codes.InvalidArgument, inval, "page_size"},
		{"ListAuditRecords/negative page_size", listAudit(&pb.ListAuditRecordsRequest{PageSize: -1}), codes.InvalidArgument, inval, "page_size"},
		{"ListBans/page_size 5000", listBans(&pb.ListBansRequest{PageSize: 5000}), codes.InvalidArgument, inval, "page_size"},
		{"ListSessions/page_size 5000", listSessions(&pb.ListSessionsRequest{PageSize: 5000}), codes.InvalidArgument, inval, "page_size"},
		{"ListAuditRecords/page_size 5000", listAudit(&pb.ListAuditRecordsRequest{PageSize: 5000}), codes.InvalidArgument, inval, "page_size"},
		{"ListBans/unknown state", listBans(&pb.ListBansRequest{State: pb.BanState(99)}), codes.InvalidArgument, inval, "state"},
		{"ListSessions/user_id without tenant", listSessions(&pb.ListSessionsRequest{UserId: "alice"}), codes.InvalidArgument, inval, "tenant_id"},
		{"ListSessions/tenant *", listSessions(&pb.ListSessionsRequest{TenantId: "*"}), codes.InvalidArgument, inval, "tenant_id"},
		{"ListAuditRecords/end before start", listAudit(&pb.ListAuditRecordsRequest{StartTime: future, EndTime: past}), codes.InvalidArgument, inval, "end_time"},

		// VerifySession.
		{"VerifySession/garbage", verify("abc"), codes.Unauthenticated, "TOKEN_INVALID", ""},
		{"VerifySession/truncated", verify(st.accessToken[:len(st.accessToken)-10]), codes.Unauthenticated, "TOKEN_INVALID", ""},
		{"VerifySession/foreign key", verify(st.foreignToken), codes.Unauthenticated, "TOKEN_INVALID", ""},
		{"VerifySession/foreign key, our kid", verify(st.foreignSameKidToken), codes.Unauthenticated, "TOKEN_INVALID", ""},
		{"VerifySession/empty", verify(""), codes.InvalidArgument, inval, "access_token"},
		{"VerifySession/bad client_ip", func(ctx context.Context) error {
			_, err := s.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: st.accessToken, ClientIp: "::ffff:1.2.3.4"})
			return err
		}, codes.InvalidArgument, inval, "client_ip"},

		// RefreshSession.
		{"RefreshSession/garbage", refresh("pcr_garbage"), codes.Unauthenticated, "TOKEN_INVALID", ""},
		{"RefreshSession/garbage, no prefix", refresh("zzz"), codes.Unauthenticated, "TOKEN_INVALID", ""},
		{"RefreshSession/oversized", refresh(strings.Repeat("z", 5000)), codes.Unauthenticated, "TOKEN_INVALID", ""},
		{"RefreshSession/empty", refresh(""), codes.InvalidArgument, inval, "refresh_token"},
		{"RefreshSession/revoked session", refresh(st.revoked.GetRefreshToken()), codes.Unauthenticated, "SESSION_REVOKED", ""},

		// CheckBan.
		{"CheckBan/no subject", func(ctx context.Context) error {
			_, err := b.CheckBan(ctx, &pb.CheckBanRequest{})
			return err
		}, codes.InvalidArgument, inval, "user_id"},
		{"CheckBan/prefix instead of address", func(ctx context.Context) error {
			_, err := b.CheckBan(ctx, &pb.CheckBanRequest{Ip: "10.0.0.0/8"})
			return err
		}, codes.InvalidArgument, inval, "ip"},

		// Watch: the error arrives on the first Recv.
		{"Watch/after_revision -1", func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			stream, err := ev.Watch(ctx, &pb.WatchRequest{AfterRevision: -1})
			if err != nil {
				return err
			}
			msg, err := stream.Recv()
			if err == nil {
				return fmt.Errorf("first Recv returned %v, want an error", msg)
			}
			return err
		}, codes.InvalidArgument, inval, "after_revision"},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.dump()
			err := c.call(e.admin())
			checkStatus(t, err, c)
			if after := e.dump(); after != before {
				t.Fatalf("the store changed:\n%s", lineDiff(before, after))
			}
		})
	}
}

// checkStatus checks err against row c: never Unknown, the code, the
// ErrorInfo reason and, when c.field is set, the "field" metadata.
func checkStatus(t *testing.T, err error, c badCase) {
	t.Helper()
	if st, ok := status.FromError(err); ok && err != nil && st.Code() == codes.Unknown {
		t.Fatalf("got codes.Unknown (%s): every error must be mapped", st.Message())
	}
	info := wantStatus(t, err, c.code, c.reason)
	if c.field != "" || c.reason == "INVALID_ARGUMENT" {
		if got := info.GetMetadata()["field"]; got != c.field {
			t.Fatalf("ErrorInfo field = %q, want %q (%v)", got, c.field, err)
		}
	}
}

// TestDeniedCallsOnlyAudit sends calls with a missing, malformed, unknown,
// revoked or expired API key, or one lacking the scope, and checks that
// each is refused with its status and that the only change to the store is
// one "call.denied" audit record.
func TestDeniedCallsOnlyAudit(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.login(&pb.CreateSessionRequest{UserId: "alice"})
	readOnly := e.keyWith("bans-reader", authority.ScopeBansRead)
	revokedKey := e.keyWith("revoked", authority.ScopeAdmin)
	keys, err := e.apiKeys.ListAPIKeys(e.admin(), &pb.ListAPIKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys.GetApiKeys() {
		if k.GetName() == "revoked" {
			if _, err := e.apiKeys.RevokeAPIKey(e.admin(), &pb.RevokeAPIKeyRequest{ApiKeyId: k.GetApiKeyId()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	exp, err := e.apiKeys.CreateAPIKey(e.admin(), &pb.CreateAPIKeyRequest{Name: "short-lived", Scopes: []string{authority.ScopeAdmin},
		ExpireTime: timestamppb.New(e.clock.Now().Add(time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Minute)
	expiredKey := exp.GetSecret()
	// A well-formed secret with the real ID of the admin key but a wrong
	// secret part.
	adminID, _, _ := strings.Cut(strings.TrimPrefix(e.adminKey, authority.APIKeyPrefix), "_")
	forged := authority.APIKeyPrefix + adminID + "_" + strings.Repeat("A", 43)

	createBan := func(ctx context.Context) error {
		_, err := e.bans.CreateBan(ctx, &pb.CreateBanRequest{Subject: userSubject("alice")})
		return err
	}
	watch := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		stream, err := e.events.Watch(ctx, &pb.WatchRequest{})
		if err != nil {
			return err
		}
		msg, err := stream.Recv()
		if err == nil {
			return fmt.Errorf("first Recv returned %v, want an error", msg)
		}
		return err
	}
	const (
		keyInvalid = "API_KEY_INVALID"
		denied     = "PERMISSION_DENIED"
	)
	cases := []struct {
		name string
		ctx  context.Context
		call func(context.Context) error
		code codes.Code
		why  string
	}{
		{"no credential", context.Background(), createBan, codes.Unauthenticated, keyInvalid},
		{"not a bearer", asRaw("Basic abc"), createBan, codes.Unauthenticated, keyInvalid},
		{"garbage key", as("garbage"), createBan, codes.Unauthenticated, keyInvalid},
		{"unknown key", as(authority.APIKeyPrefix + "nosuchid_secret"), createBan, codes.Unauthenticated, keyInvalid},
		{"forged secret", as(forged), createBan, codes.Unauthenticated, keyInvalid},
		{"revoked key", as(revokedKey), createBan, codes.Unauthenticated, keyInvalid},
		{"expired key", as(expiredKey), createBan, codes.Unauthenticated, keyInvalid},
		{"missing scope", as(readOnly), createBan, codes.PermissionDenied, denied},
		{"missing scope for Watch", as(readOnly), watch, codes.PermissionDenied, denied},
		{"no credential for Watch", context.Background(), watch, codes.Unauthenticated, keyInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.dump()
			err := c.call(c.ctx)
			checkStatus(t, err, badCase{code: c.code, reason: c.why})
			wantOnlyDeniedAudit(t, before, e.dump())
		})
	}
}

// asRaw returns a context that sends the authorization header verbatim.
func asRaw(header string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", header)
}

// wantOnlyDeniedAudit fails unless after is before plus exactly one audit
// record, of action "call.denied".
func wantOnlyDeniedAudit(t *testing.T, before, after string) {
	t.Helper()
	var b, a map[string]json.RawMessage
	if err := json.Unmarshal([]byte(before), &b); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(after), &a); err != nil {
		t.Fatal(err)
	}
	for _, k := range slices.Sorted(maps.Keys(b)) {
		if k != "Audit" && string(a[k]) != string(b[k]) {
			t.Fatalf("%s changed:\n%s", k, lineDiff(string(b[k]), string(a[k])))
		}
	}
	var ba, aa []storage.AuditRecord
	if err := json.Unmarshal(b["Audit"], &ba); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(a["Audit"], &aa); err != nil {
		t.Fatal(err)
	}
	if len(aa) != len(ba)+1 {
		t.Fatalf("got %d new audit records, want 1:\n%s", len(aa)-len(ba), lineDiff(before, after))
	}
	// Records are in ID (time) order; the new one may sort anywhere among
	// records of the same instant, so match by ID.
	old := map[string]bool{}
	for _, r := range ba {
		old[r.ID] = true
	}
	for _, r := range aa {
		if old[r.ID] {
			delete(old, r.ID)
			continue
		}
		if r.Action != "call.denied" || r.Details["method"] == "" {
			t.Fatalf("new audit record %+v, want action call.denied naming the method", r)
		}
	}
	if len(old) != 0 {
		t.Fatalf("audit records disappeared: %v", old)
	}
}

// lineDiff shows where two multi-line strings differ, as a line diff
// ("-" only in a, "+" only in b) with a few lines of context.
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	// lcs[i][j] is the longest common subsequence of al[i:] and bl[j:].
	lcs := make([][]int, len(al)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(bl)+1)
	}
	for i := len(al) - 1; i >= 0; i-- {
		for j := len(bl) - 1; j >= 0; j-- {
			if al[i] == bl[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type line struct {
		op   byte
		text string
	}
	var lines []line
	i, j := 0, 0
	for i < len(al) || j < len(bl) {
		switch {
		case i < len(al) && j < len(bl) && al[i] == bl[j]:
			lines = append(lines, line{' ', al[i]})
			i, j = i+1, j+1
		case j < len(bl) && (i == len(al) || lcs[i][j+1] >= lcs[i+1][j]):
			lines = append(lines, line{'+', bl[j]})
			j++
		default:
			lines = append(lines, line{'-', al[i]})
			i++
		}
	}
	const context = 3
	var out strings.Builder
	last := -1 // last line printed
	for k, l := range lines {
		if l.op == ' ' {
			continue
		}
		from := max(k-context, last+1)
		if last >= 0 && from > last+1 {
			out.WriteString("  ...\n")
		}
		for c := from; c < k; c++ {
			fmt.Fprintf(&out, "  %s\n", lines[c].text)
		}
		fmt.Fprintf(&out, "%c %s\n", l.op, l.text)
		last = k
		// Trailing context, unless another change follows closely.
		for c := k + 1; c < len(lines) && c <= k+context && lines[c].op == ' '; c++ {
			next := c
			for next < len(lines) && lines[next].op == ' ' {
				next++
			}
			if next < len(lines) && next-k <= 2*context {
				break
			}
			fmt.Fprintf(&out, "  %s\n", lines[c].text)
			last = c
		}
	}
	return out.String()
}
