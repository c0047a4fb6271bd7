package server_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// TestMisleadingInputRefused: free text that would forge or erase lines on
// an operator's terminal, IDs and names that look like others, a set
// expire_time that is not in the future (year 1 included: not "never"),
// IPv6 forms of IPv4 and too-short prefixes are each refused with
// INVALID_ARGUMENT on their field, and change nothing.
func TestMisleadingInputRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	live := e.login(&pb.CreateSessionRequest{UserId: "alice", ClientIp: "203.0.113.7"})
	ban := e.ban(&pb.CreateBanRequest{Subject: userSubject("mallory"), Reason: "spam"})
	s, b, k := e.sessions, e.bans, e.apiKeys
	year1 := &timestamppb.Timestamp{Seconds: -62135596800} // 0001-01-01T00:00:00Z, what Go's zero time encodes to
	badNanos := &timestamppb.Timestamp{Seconds: 2000000000, Nanos: -1}

	createBan := func(req *pb.CreateBanRequest) func(context.Context) error {
		return func(ctx context.Context) error { _, err := b.CreateBan(ctx, req); return err }
	}
	createSession := func(req *pb.CreateSessionRequest) func(context.Context) error {
		return func(ctx context.Context) error { _, err := s.CreateSession(ctx, req); return err }
	}
	checkBan := func(req *pb.CheckBanRequest) func(context.Context) error {
		return func(ctx context.Context) error { _, err := b.CheckBan(ctx, req); return err }
	}
	createKey := func(req *pb.CreateAPIKeyRequest) func(context.Context) error {
		return func(ctx context.Context) error { _, err := k.CreateAPIKey(ctx, req); return err }
	}
	verify := func(req *pb.VerifySessionRequest) func(context.Context) error {
		req.AccessToken = live.GetAccessToken()
		return func(ctx context.Context) error { _, err := s.VerifySession(ctx, req); return err }
	}
	const inval = "INVALID_ARGUMENT"
	cases := []badCase{
		// §1: free text reaching terminals.
		{"CreateBan/reason CR erase-line", createBan(&pb.CreateBanRequest{Subject: userSubject("eve"), Reason: "spam\r\x1b[2K"}), codes.InvalidArgument, inval, "reason"},
		{"CreateBan/reason newline", createBan(&pb.CreateBanRequest{Subject: userSubject("eve"), Reason: "x\nban_1  user:bob  lifted"}), codes.InvalidArgument, inval, "reason"},
		{"CreateBan/policy NUL", createBan(&pb.CreateBanRequest{Subject: userSubject("eve"), Policy: "p\x00"}), codes.InvalidArgument, inval, "policy"},
		{"CreateBan/reason RLO", createBan(&pb.CreateBanRequest{Subject: userSubject("eve"), Reason: "\u202etfil"}), codes.InvalidArgument, inval, "reason"},
		{"LiftBan/reason ESC", func(ctx context.Context) error {
			_, err := b.LiftBan(ctx, &pb.LiftBanRequest{BanId: ban.GetBan().GetBanId(), Reason: "\x1b[31mok"})
			return err
		}, codes.InvalidArgument, inval, "reason"},
		{"RevokeSession/reason C1", func(ctx context.Context) error {
			_, err := s.RevokeSession(ctx, &pb.RevokeSessionRequest{SessionId: live.GetSession().GetSessionId(), Reason: "a\u009bb"})
			return err
		}, codes.InvalidArgument, inval, "reason"},

		// §3: identifiers and names.
		{"CreateSession/decomposed user", createSession(&pb.CreateSessionRequest{UserId: "jose\u0301"}), codes.InvalidArgument, inval, "user_id"},
		{"CreateSession/zero-width space", createSession(&pb.CreateSessionRequest{UserId: "e\u200bve"}), codes.InvalidArgument, inval, "user_id"},
		{"CreateSession/BOM device", createSession(&pb.CreateSessionRequest{UserId: "eve", DeviceId: "\ufeffd1"}), codes.InvalidArgument, inval, "device_id"},
		{"CreateSession/bidi tenant", createSession(&pb.CreateSessionRequest{UserId: "eve", TenantId: "t\u2066"}), codes.InvalidArgument, inval, "tenant_id"},
		{"CreateBan/soft hyphen user", createBan(&pb.CreateBanRequest{Subject: userSubject("ev\u00ade")}), codes.InvalidArgument, inval, "subject.user_id"},
		{"CreateBan/capability POST", createBan(&pb.CreateBanRequest{Subject: userSubject("eve"), Capabilities: []string{"POST"}}), codes.InvalidArgument, inval, "capabilities"},
		{"CheckBan/decomposed user", checkBan(&pb.CheckBanRequest{UserId: "jose\u0301"}), codes.InvalidArgument, inval, "user_id"},
		{"CheckBan/capability POST", checkBan(&pb.CheckBanRequest{UserId: "eve", Capability: "POST"}), codes.InvalidArgument, inval, "capability"},
		{"VerifySession/capability Post", verify(&pb.VerifySessionRequest{Capability: "Post"}), codes.InvalidArgument, inval, "capability"},
		{"ListSessions/word joiner", func(ctx context.Context) error {
			_, err := s.ListSessions(ctx, &pb.ListSessionsRequest{TenantId: "public", UserId: "al\u2060ice"})
			return err
		}, codes.InvalidArgument, inval, "user_id"},
		{"RevokeUserSessions/decomposed", func(ctx context.Context) error {
			_, err := s.RevokeUserSessions(ctx, &pb.RevokeUserSessionsRequest{UserId: "jose\u0301"})
			return err
		}, codes.InvalidArgument, inval, "user_id"},
		{"CreateAPIKey/upper case", createKey(&pb.CreateAPIKeyRequest{Name: "Bootstrap-admin", Scopes: []string{"admin"}}), codes.InvalidArgument, inval, "name"},
		{"CreateAPIKey/Unicode hyphen", createKey(&pb.CreateAPIKeyRequest{Name: "bootstrap\u2010admin", Scopes: []string{"admin"}}), codes.InvalidArgument, inval, "name"},

		// §4: a set expire_time that is not in the future.
		{"CreateBan/expire_time year 1", createBan(&pb.CreateBanRequest{Subject: userSubject("eve"), ExpireTime: year1}), codes.InvalidArgument, inval, "expire_time"},
		{"CreateBan/expire_time invalid", createBan(&pb.CreateBanRequest{Subject: userSubject("eve"), ExpireTime: badNanos}), codes.InvalidArgument, inval, "expire_time"},
		{"CreateAPIKey/expire_time year 1", createKey(&pb.CreateAPIKeyRequest{Name: "forever", Scopes: []string{"admin"}, ExpireTime: year1}), codes.InvalidArgument, inval, "expire_time"},
		{"CreateAPIKey/expire_time invalid", createKey(&pb.CreateAPIKeyRequest{Name: "forever", Scopes: []string{"admin"}, ExpireTime: badNanos}), codes.InvalidArgument, inval, "expire_time"},

		// §7: IPv6 forms of IPv4, and prefixes around the refusal of /0.
		{"CreateBan/IPv4-compatible", createBan(&pb.CreateBanRequest{Subject: ipSubject("::198.51.100.9")}), codes.InvalidArgument, inval, "subject.ip"},
		{"CreateBan/NAT64", createBan(&pb.CreateBanRequest{Subject: ipSubject("64:ff9b::198.51.100.9")}), codes.InvalidArgument, inval, "subject.ip"},
		{"CreateBan/6to4", createBan(&pb.CreateBanRequest{Subject: ipSubject("2002:c633:6409::1")}), codes.InvalidArgument, inval, "subject.ip"},
		{"CreateBan/0.0.0.0/1", createBan(&pb.CreateBanRequest{Subject: ipSubject("0.0.0.0/1")}), codes.InvalidArgument, inval, "subject.ip"},
		{"CreateBan/128.0.0.0/1", createBan(&pb.CreateBanRequest{Subject: ipSubject("128.0.0.0/1")}), codes.InvalidArgument, inval, "subject.ip"},
		{"CreateBan/8000::/1", createBan(&pb.CreateBanRequest{Subject: ipSubject("8000::/1")}), codes.InvalidArgument, inval, "subject.ip"},
		{"CreateSession/NAT64 client", createSession(&pb.CreateSessionRequest{UserId: "eve", ClientIp: "64:ff9b::203.0.113.7"}), codes.InvalidArgument, inval, "client_ip"},
		{"CheckBan/6to4 ip", checkBan(&pb.CheckBanRequest{Ip: "2002:cb00:7107::1"}), codes.InvalidArgument, inval, "ip"},
		{"VerifySession/IPv4-compatible client", verify(&pb.VerifySessionRequest{ClientIp: "::203.0.113.7"}), codes.InvalidArgument, inval, "client_ip"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.dump()
			checkStatus(t, c.call(e.admin()), c)
			if after := e.dump(); after != before {
				t.Fatalf("the store changed:\n%s", lineDiff(before, after))
			}
		})
	}

	// What stays valid: IDs compared exactly (Eve is not eve), shortest
	// prefixes, free text with non-ASCII and emoji.
	e.ban(&pb.CreateBanRequest{Subject: userSubject("Eve"), Reason: "Spam über alles 🙄", Policy: "tos §4"})
	e.ban(&pb.CreateBanRequest{Subject: ipSubject("10.0.0.0/8"), Capabilities: []string{"post", "events:watch"}})
	e.ban(&pb.CreateBanRequest{Subject: ipSubject("2001::/16")})
	resp, err := b.CheckBan(e.admin(), &pb.CheckBanRequest{UserId: "eve"})
	if err != nil || resp.GetBanned() {
		t.Fatalf("CheckBan(eve) after banning Eve = %v, %v; want not banned (IDs are compared exactly)", resp, err)
	}
}
