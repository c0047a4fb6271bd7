package client_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// TestMirrorSnapshotThenChanges: the mirror loads the bans that existed
// before it started, then applies live changes; a ban refuses a token the
// mirror had cached, and lifting a user ban leaves the session revoked.
func TestMirrorSnapshotThenChanges(t *testing.T) {
	e := newEnv(t, envOptions{})
	mallory := e.login(&pb.CreateSessionRequest{UserId: "mallory"})
	old := e.ban(&pb.CreateBanRequest{Subject: userSubject("mallory"), Reason: "spam"})
	alice := e.login(&pb.CreateSessionRequest{UserId: "alice", DeviceId: "d1", ClientIp: "203.0.113.7"})

	m := newMirror(t, e, client.MirrorOptions{})
	if st := m.Stats(); st.Bans != 1 || st.Resets != 1 || st.Revoked != 1 || st.Keys != 1 {
		t.Fatalf("after the snapshot: %+v", st)
	}
	if m.StoreID() != e.StoreID() || m.Revision() != e.Revision() {
		t.Fatalf("mirror at %s/%d, store at %s/%d", m.StoreID(), m.Revision(), e.StoreID(), e.Revision())
	}
	// From the snapshot: mallory's ban (it comes before her revocation).
	_, err := m.check(mallory.GetAccessToken(), client.CheckInput{})
	wantBan(t, err, client.ErrUserBanned, old.GetBanId())

	in := client.CheckInput{ClientIP: netip.MustParseAddr("203.0.113.7")}
	s := m.ok(alice.GetAccessToken(), in)
	want := client.Session{
		SessionID: alice.GetSession().GetSessionId(), TenantID: "public", UserID: "alice", DeviceID: "d1",
		IssueTime: e.Clock().Now().Truncate(time.Second), ExpireTime: alice.GetSession().GetAccessExpireTime().AsTime(),
	}
	if !s.IssueTime.Equal(want.IssueTime) || !s.ExpireTime.Equal(want.ExpireTime) {
		t.Fatalf("times %v %v, want %v %v", s.IssueTime, s.ExpireTime, want.IssueTime, want.ExpireTime)
	}
	s.IssueTime, s.ExpireTime = want.IssueTime, want.ExpireTime
	if *s != want {
		t.Fatalf("session %+v, want %+v", *s, want)
	}
	if m.Stats().Cached != 2 { // verified tokens are cached, banned or not
		t.Fatalf("cached %d tokens, want 2", m.Stats().Cached)
	}

	// A live ban refuses the cached token, with the ban's ID.
	b := e.ban(&pb.CreateBanRequest{Subject: userSubject("alice"), Reason: "abuse"})
	m.catchUp(e)
	_, err = m.check(alice.GetAccessToken(), in)
	if be := wantBan(t, err, client.ErrUserBanned, b.GetBanId()); !be.ExpireTime.IsZero() {
		t.Fatalf("permanent ban with expiry %v", be.ExpireTime)
	}
	// Lifted: the ban revoked the session, so the token stays refused.
	e.lift(b.GetBanId())
	m.catchUp(e)
	if _, err := m.check(alice.GetAccessToken(), in); !errors.Is(err, client.ErrSessionRevoked) {
		t.Fatalf("after the lift: %v, want ErrSessionRevoked", err)
	}
	if got := m.Stats(); got.Bans != 1 || got.Revoked != 2 || got.Changes != 2 {
		t.Fatalf("stats %+v", got)
	}

	// A new login works; a forged or garbled token does not.
	alice2 := e.login(&pb.CreateSessionRequest{UserId: "alice"})
	m.catchUp(e)
	m.ok(alice2.GetAccessToken(), in)
	tok := alice2.GetAccessToken()
	flip := byte('A')
	if tok[len(tok)-10] == 'A' {
		flip = 'B'
	}
	forged := tok[:len(tok)-10] + string(flip) + tok[len(tok)-9:]
	for _, bad := range []string{"", "x", forged, tok + ".x"} {
		if _, err := m.check(bad, in); !errors.Is(err, client.ErrTokenInvalid) {
			t.Fatalf("check(%q): %v, want ErrTokenInvalid", bad, err)
		}
	}
}

// TestMirrorDeviceAndIPBans: device and IP bans (IPv4 /24, IPv6 /48)
// refuse only the requests that match, in the ban's tenant or any for
// "*", and stop refusing when lifted.
func TestMirrorDeviceAndIPBans(t *testing.T) {
	e := newEnv(t, envOptions{})
	m := newMirror(t, e, client.MirrorOptions{})
	// No device and no address at login: the bans below revoke nothing.
	bob := e.login(&pb.CreateSessionRequest{UserId: "bob"}).GetAccessToken()
	carol := e.login(&pb.CreateSessionRequest{UserId: "carol", DeviceId: "phone-c"}).GetAccessToken()
	m.catchUp(e)

	type req struct {
		name string
		tok  string
		in   client.CheckInput
	}
	ip := netip.MustParseAddr
	check := func(step string, refused map[string]error, reqs ...req) {
		t.Helper()
		for _, r := range reqs {
			_, err := m.check(r.tok, r.in)
			want := refused[r.name]
			switch {
			case want == nil && err != nil:
				t.Fatalf("%s: %s refused: %v", step, r.name, err)
			case want != nil && !errors.Is(err, want):
				t.Fatalf("%s: %s: %v, want %v", step, r.name, err, want)
			}
		}
	}
	reqs := []req{
		{"bob", bob, client.CheckInput{}},
		{"bob on d2", bob, client.CheckInput{DeviceID: "d2"}},
		{"bob on d3", bob, client.CheckInput{DeviceID: "d3"}},
		{"bob from v4 in", bob, client.CheckInput{ClientIP: ip("198.51.100.9")}},
		{"bob from v4 mapped", bob, client.CheckInput{ClientIP: ip("::ffff:198.51.100.10")}},
		{"bob from v4 out", bob, client.CheckInput{ClientIP: ip("198.51.101.9")}},
		{"bob from v6 in", bob, client.CheckInput{ClientIP: ip("2001:db8:1:ffff::1")}},
		{"bob from v6 out", bob, client.CheckInput{ClientIP: ip("2001:db8:2::1")}},
		{"carol on d2", carol, client.CheckInput{DeviceID: "d2"}},
	}
	check("before", nil, reqs...)

	dev := e.ban(&pb.CreateBanRequest{Subject: deviceSubject("d2")})
	v4 := e.ban(&pb.CreateBanRequest{Subject: ipSubject("198.51.100.0/24")})
	v6 := e.ban(&pb.CreateBanRequest{Subject: ipSubject("2001:db8:1::/48"), TenantId: "*"})
	other := e.ban(&pb.CreateBanRequest{Subject: deviceSubject("d3"), TenantId: "another-tenant"})
	m.catchUp(e)
	check("banned", map[string]error{
		"bob on d2": client.ErrDeviceBanned, "carol on d2": client.ErrDeviceBanned,
		"bob from v4 in": client.ErrIPBanned, "bob from v4 mapped": client.ErrIPBanned,
		"bob from v6 in": client.ErrIPBanned,
	}, reqs...)
	_, err := m.check(bob, client.CheckInput{ClientIP: ip("198.51.100.9")})
	wantBan(t, err, client.ErrIPBanned, v4.GetBanId())
	_, err = m.check(bob, client.CheckInput{ClientIP: ip("2001:db8:1::7")})
	wantBan(t, err, client.ErrIPBanned, v6.GetBanId())
	_, err = m.check(carol, client.CheckInput{DeviceID: "d2", ClientIP: ip("198.51.100.9")})
	wantBan(t, err, client.ErrDeviceBanned, dev.GetBanId()) // device before IP

	for _, b := range []*pb.Ban{dev, v4, v6, other} {
		e.lift(b.GetBanId())
	}
	m.catchUp(e)
	check("lifted", nil, reqs...)

	// A ban on the token's own device refuses it, and revokes the session.
	b := e.ban(&pb.CreateBanRequest{Subject: deviceSubject("phone-c")})
	m.catchUp(e)
	_, err = m.check(carol, client.CheckInput{})
	wantBan(t, err, client.ErrDeviceBanned, b.GetBanId())
	e.lift(b.GetBanId())
	m.catchUp(e)
	if _, err := m.check(carol, client.CheckInput{}); !errors.Is(err, client.ErrSessionRevoked) {
		t.Fatalf("after the lift: %v, want ErrSessionRevoked", err)
	}
}

// TestMirrorCapabilityAndTemporaryBans: a capability ban refuses only that
// capability; temporary bans stop applying at their expiry with no event
// (the clocks move, nothing else).
func TestMirrorCapabilityAndTemporaryBans(t *testing.T) {
	e := newEnv(t, envOptions{})
	m := newMirror(t, e, client.MirrorOptions{})
	dave := e.login(&pb.CreateSessionRequest{UserId: "dave"}).GetAccessToken()
	perm := e.ban(&pb.CreateBanRequest{Subject: userSubject("dave"), Capabilities: []string{"post"}})
	temp := e.ban(&pb.CreateBanRequest{Subject: userSubject("dave"), Capabilities: []string{"comment", "dm"}, Duration: "5m"})
	tempIP := e.ban(&pb.CreateBanRequest{Subject: ipSubject("192.0.2.0/24"), Duration: "5m"})
	m.catchUp(e)

	m.ok(dave, client.CheckInput{})
	m.ok(dave, client.CheckInput{Capability: "read"})
	_, err := m.check(dave, client.CheckInput{Capability: "post"})
	if be := wantBan(t, err, client.ErrCapabilityRestricted, perm.GetBanId()); be.Capability != "post" || !be.ExpireTime.IsZero() {
		t.Fatalf("ban error %+v", be)
	}
	_, err = m.check(dave, client.CheckInput{Capability: "comment"})
	if be := wantBan(t, err, client.ErrCapabilityRestricted, temp.GetBanId()); !be.ExpireTime.Equal(temp.GetExpireTime().AsTime()) {
		t.Fatalf("expiry %v, want %v", be.ExpireTime, temp.GetExpireTime().AsTime())
	}
	from := netip.MustParseAddr("192.0.2.1")
	_, err = m.check(dave, client.CheckInput{ClientIP: from, Capability: "comment"})
	wantBan(t, err, client.ErrIPBanned, tempIP.GetBanId()) // a full ban comes first

	m.advance(e, 5*time.Minute-time.Nanosecond)
	_, err = m.check(dave, client.CheckInput{ClientIP: from})
	wantBan(t, err, client.ErrIPBanned, tempIP.GetBanId())
	m.advance(e, time.Nanosecond)
	m.ok(dave, client.CheckInput{ClientIP: from, Capability: "comment"})
	m.ok(dave, client.CheckInput{Capability: "dm"})
	_, err = m.check(dave, client.CheckInput{Capability: "post"})
	wantBan(t, err, client.ErrCapabilityRestricted, perm.GetBanId())

	// Expired bans leave the mirror at its next prune.
	m.Prune()
	if got := m.Stats().Bans; got != 1 {
		t.Fatalf("%d bans held after the prune, want 1", got)
	}
}

// TestMirrorKeyRotation: tokens of the old and the new key verify; the old
// key's tokens until they expire; the old key leaves after verify_until.
func TestMirrorKeyRotation(t *testing.T) {
	e := newEnv(t, envOptions{})
	m := newMirror(t, e, client.MirrorOptions{})
	a := e.login(&pb.CreateSessionRequest{UserId: "alice"}).GetAccessToken()
	if _, err := e.admin.Keys.RotateKey(e.ctx(), &pb.RotateKeyRequest{Reason: "scheduled"}); err != nil {
		t.Fatal(err)
	}
	b := e.login(&pb.CreateSessionRequest{UserId: "bob"}).GetAccessToken()
	m.catchUp(e)
	if got := m.Stats().Keys; got != 2 {
		t.Fatalf("%d keys, want 2", got)
	}
	m.ok(a, client.CheckInput{}) // first seen after the rotation
	m.ok(b, client.CheckInput{})

	m.advance(e, 10*time.Minute)
	c := e.login(&pb.CreateSessionRequest{UserId: "carol"}).GetAccessToken()
	m.catchUp(e)
	m.ok(a, client.CheckInput{})
	m.advance(e, 5*time.Minute-time.Second)
	m.ok(a, client.CheckInput{})
	m.advance(e, time.Second)
	if _, err := m.check(b, client.CheckInput{}); !errors.Is(err, client.ErrTokenExpired) {
		t.Fatalf("15 minutes on: %v, want ErrTokenExpired", err)
	}
	m.ok(c, client.CheckInput{})
	// The old key's verify_until is its last token's expiry: once it is
	// pruned, its tokens are unknown, as they are to the authority.
	m.Prune()
	if got := m.Stats().Keys; got != 1 {
		t.Fatalf("%d keys after verify_until, want 1", got)
	}
	if _, err := m.check(a, client.CheckInput{}); !errors.Is(err, client.ErrTokenInvalid) {
		t.Fatalf("old key's token after verify_until: %v, want ErrTokenInvalid", err)
	}
	_, err := e.admin.Sessions.VerifySession(e.ctx(), &pb.VerifySessionRequest{AccessToken: a})
	if !errors.Is(err, client.ErrTokenInvalid) {
		t.Fatalf("the authority says %v, want ErrTokenInvalid", err)
	}
	m.ok(c, client.CheckInput{})
}

// TestMirrorPrunesRevokedSessions: a revoked session is held until its
// last access token expires, then dropped.
func TestMirrorPrunesRevokedSessions(t *testing.T) {
	e := newEnv(t, envOptions{})
	m := newMirror(t, e, client.MirrorOptions{})
	s := e.login(&pb.CreateSessionRequest{UserId: "alice"})
	if _, err := e.admin.Sessions.RevokeSession(e.ctx(), &pb.RevokeSessionRequest{SessionId: s.GetSession().GetSessionId()}); err != nil {
		t.Fatal(err)
	}
	m.catchUp(e)
	if _, err := m.check(s.GetAccessToken(), client.CheckInput{}); !errors.Is(err, client.ErrSessionRevoked) {
		t.Fatalf("%v, want ErrSessionRevoked", err)
	}
	m.Prune()
	if got := m.Stats().Revoked; got != 1 {
		t.Fatalf("%d revoked sessions held, want 1", got)
	}
	m.advance(e, 15*time.Minute)
	m.Prune()
	if got := m.Stats().Revoked; got != 0 {
		t.Fatalf("%d revoked sessions held after their tokens expired, want 0", got)
	}
	if _, err := m.check(s.GetAccessToken(), client.CheckInput{}); !errors.Is(err, client.ErrTokenExpired) {
		t.Fatalf("%v, want ErrTokenExpired", err)
	}
}
