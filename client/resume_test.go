package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// TestMirrorResume: the authority restarts on the same file; the mirror
// reconnects and resumes from its revision without a reset, and enforces
// what happens after the restart. Then the data is wiped (a new file, a
// new store_id): the mirror starts over from a snapshot.
func TestMirrorResume(t *testing.T) {
	clock, nw := newClock(), &network{}
	e := newEnv(t, envOptions{clock: clock, net: nw})
	// The mirror's API key lives in the store, so it survives restarts.
	key := e.NewAPIKey("mirror", "events:watch")
	nw.key.Store(&key)
	m := newMirror(t, e, client.MirrorOptions{})
	alice := e.login(&pb.CreateSessionRequest{UserId: "alice"}).GetAccessToken()
	bob := e.login(&pb.CreateSessionRequest{UserId: "bob"}).GetAccessToken()
	e.ban(&pb.CreateBanRequest{Subject: userSubject("mallory"), Duration: "1h"})
	e.ban(&pb.CreateBanRequest{Subject: ipSubject("2001:db8::/32"), TenantId: "*", Capabilities: []string{"post"}})
	m.catchUp(e)
	m.ok(alice, client.CheckInput{})
	rev, storeID := m.Revision(), m.StoreID()
	connects := m.Stats().Connects

	e.Stop()
	// Still within the staleness bound: checks go on from the local state.
	m.ok(alice, client.CheckInput{})

	e.Restart()
	eventually(t, "the mirror to reconnect", func() bool { return m.Stats().Connects > connects })
	if m.StoreID() != storeID || m.Revision() < rev {
		t.Fatalf("after the restart the mirror is at %s/%d, was %s/%d", m.StoreID(), m.Revision(), storeID, rev)
	}
	b := e.ban(&pb.CreateBanRequest{Subject: userSubject("bob")})
	m.catchUp(e)
	_, err := m.check(bob, client.CheckInput{})
	wantBan(t, err, client.ErrUserBanned, b.GetBanId())
	m.ok(alice, client.CheckInput{})
	if got := m.Stats().Resets; got != 1 {
		t.Fatalf("%d resets, want 1 (a resume, not a snapshot)", got)
	}
	compareBans(t, e, m)

	// Wipe: a new authority on the mirror's network is a new store, with
	// other keys and no bans.
	e.Stop()
	e3 := newEnv(t, envOptions{clock: clock, net: nw})
	nw.key.Store(&e3.AdminKey)
	eventually(t, "the mirror to load the new store", func() bool { return m.StoreID() == e3.StoreID() })
	if got := m.Stats().Resets; got != 2 {
		t.Fatalf("%d resets, want 2", got)
	}
	m.catchUp(e3)
	compareBans(t, e3, m)
	// The cached token was signed by a key the new store does not have.
	if _, err := m.check(alice, client.CheckInput{}); !errors.Is(err, client.ErrTokenInvalid) {
		t.Fatalf("old store's token: %v, want ErrTokenInvalid", err)
	}
	m.ok(e3.login(&pb.CreateSessionRequest{UserId: "alice"}).GetAccessToken(), client.CheckInput{})
}

// compareBans fails unless the mirror holds exactly the authority's
// active bans.
func compareBans(t testing.TB, e *env, m *mirror) {
	t.Helper()
	compareBansOf(t, e.admin, e.Clock().Now(), m.Mirror)
}

// compareBansOf fails unless the mirror holds exactly the active bans that
// admin lists.
func compareBansOf(t testing.TB, admin *client.Client, now time.Time, m *client.Mirror) {
	t.Helper()
	var want []client.HeldBan
	req := &pb.ListBansRequest{State: pb.BanState_BAN_STATE_ACTIVE, PageSize: 100}
	for {
		resp, err := admin.Bans.ListBans(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range resp.GetBans() {
			h := client.HeldBan{BanID: b.GetBanId(), TenantID: b.GetTenantId(), Capabilities: b.GetCapabilities()}
			switch s := b.GetSubject().GetKind().(type) {
			case *pb.Subject_UserId:
				h.Subject = "user:" + s.UserId
			case *pb.Subject_DeviceId:
				h.Subject = "device:" + s.DeviceId
			case *pb.Subject_Ip:
				h.Subject = "ip:" + s.Ip
			}
			if b.GetExpireTime() != nil {
				h.ExpireTime = b.GetExpireTime().AsTime()
			}
			want = append(want, h)
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	slices.SortFunc(want, func(a, b client.HeldBan) int { return strings.Compare(a.BanID, b.BanID) })
	got := m.HeldBans(now)
	if len(got) != len(want) {
		t.Fatalf("mirror holds %d bans, authority has %d:\n%+v\n%+v", len(got), len(want), got, want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.BanID != w.BanID || g.TenantID != w.TenantID || g.Subject != w.Subject ||
			!slices.Equal(g.Capabilities, w.Capabilities) || !g.ExpireTime.Equal(w.ExpireTime) {
			t.Fatalf("ban %d: mirror %+v, authority %+v", i, g, w)
		}
	}
}

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMirrorStaleness: with the authority gone and the mirror's clock past
// StaleAfter, checks fail closed with ErrMirrorStale (or, fail-open, pass
// and are logged); when the authority is back, checks recover.
func TestMirrorStaleness(t *testing.T) {
	clock, nw := newClock(), &network{}
	e1 := newEnv(t, envOptions{clock: clock, net: nw})
	key := e1.NewAPIKey("mirror", "events:watch")
	nw.key.Store(&key)
	closed := newMirror(t, e1, client.MirrorOptions{StaleAfter: 30 * time.Second})
	var logs syncBuffer
	open := newMirror(t, e1, client.MirrorOptions{StaleAfter: 30 * time.Second, FailOpen: true,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	tok := e1.login(&pb.CreateSessionRequest{UserId: "alice"}).GetAccessToken()
	closed.catchUp(e1)
	open.catchUp(e1)
	closed.ok(tok, client.CheckInput{})

	e1.Stop()
	clock.Advance(31 * time.Second)
	if s := closed.Stats().Staleness; s <= 30*time.Second {
		t.Fatalf("staleness %v with the authority stopped 31s ago", s)
	}
	if _, err := closed.check(tok, client.CheckInput{}); !errors.Is(err, client.ErrMirrorStale) {
		t.Fatalf("stale check: %v, want ErrMirrorStale", err)
	}
	st, ok := asStatus(client.Status(client.ErrMirrorStale))
	if !ok || st.code != "Unavailable" || st.reason != "MIRROR_STALE" {
		t.Fatalf("Status(ErrMirrorStale) = %+v", st)
	}
	open.ok(tok, client.CheckInput{})
	if !strings.Contains(logs.String(), "fail-open") || !strings.Contains(logs.String(), "user_id=alice") {
		t.Fatalf("fail-open check not logged: %q", logs.String())
	}

	e1.Restart()
	eventually(t, "checks to recover", func() bool {
		_, err := closed.check(tok, client.CheckInput{})
		return err == nil
	})
	if got := closed.Stats().Resets; got != 1 {
		t.Fatalf("%d resets, want 1", got)
	}
}

// TestMirrorBeforeSync: a mirror that has not loaded a snapshot refuses
// every check, fail-open or not.
func TestMirrorBeforeSync(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		m := client.NewMirror(nil, client.MirrorOptions{FailOpen: failOpen})
		if _, err := m.Check(t.Context(), "x.y.z", client.CheckInput{}); !errors.Is(err, client.ErrMirrorStale) {
			t.Fatalf("fail-open %v: %v, want ErrMirrorStale", failOpen, err)
		}
		if err := m.Run(t.Context()); err == nil {
			t.Fatal("Run without a Client succeeded")
		}
	}
}

// TestMirrorLargeSnapshot: a snapshot of 50k bans (about 6 MB: several
// parts at the authority's default part size) loads.
func TestMirrorLargeSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 50k bans")
	}
	e := newEnv(t, envOptions{})
	const n = 50_000
	now := timestamppb.New(e.Clock().Now())
	e.SeedBans(n, func(i int) *pb.Ban {
		return &pb.Ban{BanId: synthID("ban_", i), TenantId: "public", Subject: userSubject(fmt.Sprintf("user-%07d", i)),
			Reason: "spam in comments", Policy: "tos-4.2", CreatedBy: "moderation-bot", CreateTime: now}
	})
	m := newMirror(t, e, client.MirrorOptions{})
	if got := m.Stats().Bans; got != n {
		t.Fatalf("%d bans loaded, want %d", got, n)
	}
	tok := e.login(&pb.CreateSessionRequest{UserId: "alice"}).GetAccessToken()
	m.catchUp(e)
	m.ok(tok, client.CheckInput{})
}
