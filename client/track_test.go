package client_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// cancelled is a tracked stream's cancel function and what it received.
type cancelled chan error

func newCancelled() cancelled { return make(cancelled, 2) }

func (c cancelled) cancel(err error) { c <- err }

// wait returns the error cancel was called with (within 10 s).
func (c cancelled) wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-c:
		return err
	case <-time.After(time.Minute):
		t.Fatal("cancel was not called")
		return nil
	}
}

// none fails if cancel has been called.
func (c cancelled) none(t testing.TB, what string) {
	t.Helper()
	select {
	case err := <-c:
		t.Fatalf("%s: cancel called with %v", what, err)
	default:
	}
}

// waitEvent waits until the mirror has applied an event that satisfies
// match. Track's cancels run before OnEvent, so afterwards every cancel
// the event causes has been called.
func (m *mirror) waitEvent(match func(*pb.Event) bool) {
	m.t.Helper()
	for {
		select {
		case ev := <-m.events:
			if match(ev) {
				return
			}
		case <-time.After(time.Minute):
			m.t.Fatal("event not applied")
		}
	}
}

func banCreated(id string) func(*pb.Event) bool {
	return func(ev *pb.Event) bool { return ev.GetBanCreated().GetBanId() == id }
}

func TestTrack(t *testing.T) {
	e := newEnv(t, envOptions{})
	m := newMirror(t, e, client.MirrorOptions{})
	ip := netip.MustParseAddr("203.0.113.50")
	login := func(user, device string) (*client.Session, string) {
		tok := e.login(&pb.CreateSessionRequest{UserId: user, DeviceId: device}).GetAccessToken()
		m.catchUp(e)
		return m.ok(tok, client.CheckInput{ClientIP: ip}), tok
	}

	t.Run("user ban", func(t *testing.T) {
		s, _ := login("alice", "")
		c := newCancelled()
		defer m.Track(s, client.CheckInput{ClientIP: ip}, c.cancel)()
		other := newCancelled()
		os, _ := login("alice-other", "")
		defer m.Track(os, client.CheckInput{ClientIP: ip}, other.cancel)()
		b := e.ban(&pb.CreateBanRequest{Subject: userSubject("alice")})
		be := wantBan(t, c.wait(t), client.ErrUserBanned, b.GetBanId())
		if be.Reason != pb.ErrorReason_USER_BANNED {
			t.Fatalf("reason %v", be.Reason)
		}
		m.waitEvent(banCreated(b.GetBanId()))
		c.none(t, "a second time")
		other.none(t, "another user")
	})

	t.Run("untracked", func(t *testing.T) {
		s, _ := login("bob", "")
		c := newCancelled()
		untrack := m.Track(s, client.CheckInput{ClientIP: ip}, c.cancel)
		if got := m.Stats().Tracked; got != 1 {
			t.Fatalf("%d tracked, want 1", got)
		}
		untrack()
		untrack()
		if got := m.Stats().Tracked; got != 0 {
			t.Fatalf("%d tracked after untrack, want 0", got)
		}
		b := e.ban(&pb.CreateBanRequest{Subject: userSubject("bob")})
		m.waitEvent(banCreated(b.GetBanId()))
		c.none(t, "after untrack")
	})

	t.Run("session revoked", func(t *testing.T) {
		s, _ := login("carol", "")
		c := newCancelled()
		defer m.Track(s, client.CheckInput{ClientIP: ip}, c.cancel)()
		if _, err := e.admin.Sessions.RevokeSession(e.ctx(), &pb.RevokeSessionRequest{SessionId: s.SessionID, Reason: "test"}); err != nil {
			t.Fatal(err)
		}
		if err := c.wait(t); !errors.Is(err, client.ErrSessionRevoked) {
			t.Fatalf("cancel got %v, want ErrSessionRevoked", err)
		}
	})

	t.Run("device and IP bans", func(t *testing.T) {
		s1, _ := login("dave", "dave-phone")
		s2, _ := login("erin", "")
		s3, _ := login("frank", "")
		c1, c2, c3 := newCancelled(), newCancelled(), newCancelled()
		defer m.Track(s1, client.CheckInput{ClientIP: ip}, c1.cancel)()
		defer m.Track(s2, client.CheckInput{ClientIP: netip.MustParseAddr("2001:db8::5"), DeviceID: "erin-laptop"}, c2.cancel)()
		defer m.Track(s3, client.CheckInput{ClientIP: netip.MustParseAddr("198.51.100.1")}, c3.cancel)()

		b1 := e.ban(&pb.CreateBanRequest{Subject: deviceSubject("dave-phone")})
		wantBan(t, c1.wait(t), client.ErrDeviceBanned, b1.GetBanId())
		b2 := e.ban(&pb.CreateBanRequest{Subject: deviceSubject("erin-laptop")})
		wantBan(t, c2.wait(t), client.ErrDeviceBanned, b2.GetBanId())
		// A capability ban, and an IP ban elsewhere, end nothing.
		b3 := e.ban(&pb.CreateBanRequest{Subject: userSubject("frank"), Capabilities: []string{"post"}})
		b4 := e.ban(&pb.CreateBanRequest{Subject: ipSubject("198.51.101.0/24")})
		m.waitEvent(banCreated(b3.GetBanId()))
		m.waitEvent(banCreated(b4.GetBanId()))
		c3.none(t, "capability or unrelated IP ban")
		b5 := e.ban(&pb.CreateBanRequest{Subject: ipSubject("198.51.100.0/24"), TenantId: "*"})
		wantBan(t, c3.wait(t), client.ErrIPBanned, b5.GetBanId())
	})

	t.Run("capability ban", func(t *testing.T) {
		s, _ := login("hana", "")
		posting, reading := newCancelled(), newCancelled()
		defer m.Track(s, client.CheckInput{ClientIP: ip, Capability: "post"}, posting.cancel)()
		defer m.Track(s, client.CheckInput{ClientIP: ip, Capability: "read"}, reading.cancel)()
		b := e.ban(&pb.CreateBanRequest{Subject: userSubject("hana"), Capabilities: []string{"post", "comment"}})
		be := wantBan(t, posting.wait(t), client.ErrCapabilityRestricted, b.GetBanId())
		if be.Capability != "post" {
			t.Fatalf("capability %q, want post", be.Capability)
		}
		m.waitEvent(banCreated(b.GetBanId()))
		reading.none(t, "a ban on other capabilities")
	})

	t.Run("already refused", func(t *testing.T) {
		s, _ := login("gina", "")
		b := e.ban(&pb.CreateBanRequest{Subject: userSubject("gina")})
		m.catchUp(e)
		c := newCancelled()
		untrack := m.Track(s, client.CheckInput{ClientIP: ip}, c.cancel)
		defer untrack()
		select {
		case err := <-c:
			wantBan(t, err, client.ErrUserBanned, b.GetBanId())
		default:
			t.Fatal("Track of a banned session did not cancel it at once")
		}
	})

	if got := m.Stats().Tracked; got != 0 {
		t.Fatalf("%d streams still tracked", got)
	}
}
