package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/authoritytest/embedetcd"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// replica is one authority replica over a shared etcd store, served on its
// own loopback TCP port (Addr), with an admin client of it.
type replica struct {
	*authoritytest.Authority
	admin *client.Client
}

// startReplicas starts n authority replicas over one embedded etcd and
// returns them with the admin key.
func startReplicas(t *testing.T, n int, clock *authoritytest.Clock) ([]*replica, string) {
	t.Helper()
	as := authoritytest.StartReplicas(t, n, authoritytest.Options{
		Clock: clock, CheckpointInterval: 20 * time.Millisecond, EtcdEndpoints: embedetcd.Start(t)})
	rs := make([]*replica, n)
	for i, a := range as {
		rs[i] = &replica{Authority: a, admin: a.Dial()}
	}
	return rs, as[0].AdminKey
}

// eventKey names an event: the same key twice is the same event applied
// twice.
func eventKey(e *pb.Event) string {
	switch k := e.GetKind().(type) {
	case *pb.Event_BanCreated:
		return "ban_created:" + k.BanCreated.GetBanId()
	case *pb.Event_BanLifted:
		return "ban_lifted:" + k.BanLifted.GetBanId()
	case *pb.Event_SessionRevoked:
		return "session_revoked:" + k.SessionRevoked.GetSessionId()
	case *pb.Event_KeyAdded:
		return "key_added:" + k.KeyAdded.GetKeyId()
	case *pb.Event_KeyRetired:
		return "key_retired:" + k.KeyRetired.GetKeyId()
	}
	return fmt.Sprintf("unknown:%v", e)
}

type appliedEvent struct {
	rev int64
	key string
}

// TestMirrorFailover: a mirror dialled with the addresses of three
// replicas follows one; when that replica dies, it moves to another and
// resumes from its revision (no snapshot), missing no event and applying
// none twice, and reports its progress to the new replica.
func TestMirrorFailover(t *testing.T) {
	clock := newClock()
	rs, _ := startReplicas(t, 3, clock)
	ctx := context.Background()
	keyResp, err := rs[0].admin.APIKeys.CreateAPIKey(ctx, &pb.CreateAPIKeyRequest{Name: "mirror", Scopes: []string{"events:watch"}})
	if err != nil {
		t.Fatal(err)
	}
	addrs := make([]string, len(rs))
	for i, r := range rs {
		addrs[i] = r.Addr()
	}
	c, err := client.Dial(strings.Join(addrs, ","), client.WithInsecure(), client.WithAPIKey(keyResp.GetSecret()),
		client.WithDialOptions(grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 5 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 50 * time.Millisecond},
			MinConnectTimeout: time.Second,
		})))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	var (
		mu      sync.Mutex
		applied []appliedEvent
		m       *client.Mirror
	)
	const service = "failover-test"
	m = client.NewMirror(c, client.MirrorOptions{
		Clock: clock.Now, Logger: testLogger(t), Identity: client.MirrorIdentity{Service: service},
		MinBackoff: 2 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		// Called after the state that includes e is in place: Revision()
		// is e's revision.
		OnEvent: func(e *pb.Event) {
			mu.Lock()
			applied = append(applied, appliedEvent{m.Revision(), eventKey(e)})
			mu.Unlock()
		},
	})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Mirror.Run: %v", err)
		}
	}()
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	if err := m.WaitSynced(wctx); err != nil {
		t.Fatalf("WaitSynced: %v", err)
	}
	startRev, storeID := m.Revision(), m.StoreID()

	// writes makes n bans, lifts every third, and revokes a session, on r.
	var seq int
	writes := func(r *replica, n int) {
		t.Helper()
		for range n {
			seq++
			b, err := r.admin.Bans.CreateBan(ctx, &pb.CreateBanRequest{Subject: userSubject(fmt.Sprintf("user-%d", seq)), Reason: "spam"})
			if err != nil {
				t.Fatalf("CreateBan on %s: %v", r.Addr(), err)
			}
			if seq%3 == 0 {
				if _, err := r.admin.Bans.LiftBan(ctx, &pb.LiftBanRequest{BanId: b.GetBan().GetBanId(), Reason: "appeal"}); err != nil {
					t.Fatalf("LiftBan on %s: %v", r.Addr(), err)
				}
			}
		}
		s, err := r.admin.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{UserId: fmt.Sprintf("victim-%d", seq)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.admin.Sessions.RevokeSession(ctx, &pb.RevokeSessionRequest{SessionId: s.GetSession().GetSessionId(), Reason: "stolen"}); err != nil {
			t.Fatalf("RevokeSession on %s: %v", r.Addr(), err)
		}
	}
	storeRev := func(r *replica) int64 {
		t.Helper()
		resp, err := r.admin.Events.GetRevision(ctx, &pb.GetRevisionRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetRevision()
	}
	// following returns the replica whose subscribers list the mirror, and
	// the revision the mirror last reported to it.
	following := func(live []*replica) (*replica, int64) {
		t.Helper()
		var found *replica
		var reported int64
		for _, r := range live {
			resp, err := r.admin.Events.ListSubscribers(ctx, &pb.ListSubscribersRequest{})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range resp.GetSubscribers() {
				if s.GetIdentity().GetService() != service {
					continue
				}
				if found != nil {
					t.Fatalf("the mirror is subscribed to %s and %s", found.Addr(), r.Addr())
				}
				found, reported = r, s.GetAppliedRevision()
			}
		}
		return found, reported
	}

	writes(rs[1], 6)
	rev := storeRev(rs[1])
	eventually(t, "the mirror to apply the first writes", func() bool { return m.Revision() >= rev })
	var dead *replica
	eventually(t, "the mirror to report its revision", func() bool {
		r, reported := following(rs)
		dead = r
		return r != nil && reported >= rev
	})
	connects := m.Stats().Connects

	// Kill the mirror's replica, and write on another one while the
	// mirror moves.
	dead.Stop()
	var live []*replica
	for _, r := range rs {
		if r != dead {
			live = append(live, r)
		}
	}
	writes(live[0], 6)
	eventually(t, "the mirror to reconnect", func() bool { return m.Stats().Connects > connects })
	writes(live[1], 6)
	final := storeRev(live[0])
	eventually(t, "the mirror to catch up on another replica", func() bool { return m.Revision() >= final })
	var now *replica
	eventually(t, "the mirror to report its revision to its new replica", func() bool {
		r, reported := following(live)
		now = r
		return r != nil && reported >= final
	})
	t.Logf("mirror moved from %s to %s; revisions %d..%d", dead.Addr(), now.Addr(), startRev, final)

	if st := m.Stats(); st.Resets != 1 || st.StoreID != storeID {
		t.Fatalf("after the failover: %d resets (want 1: a resume, not a snapshot), store %q (want %q)", st.Resets, st.StoreID, storeID)
	}

	// What the mirror applied is exactly what the store has after its
	// snapshot: the changes a fresh stream from that revision replays.
	mu.Lock()
	got := slices.Clone(applied)
	mu.Unlock()
	seen := map[string]bool{}
	for i, a := range got {
		if seen[a.key] {
			t.Fatalf("event %s applied twice", a.key)
		}
		seen[a.key] = true
		if i > 0 && a.rev < got[i-1].rev {
			t.Fatalf("event %d (%s) at revision %d after revision %d", i, a.key, a.rev, got[i-1].rev)
		}
	}
	want := replay(t, now, startRev, storeID, final)
	if !slices.Equal(got, want) {
		t.Fatalf("the mirror applied %d events:\n%v\nthe store has %d after revision %d:\n%v", len(got), got, len(want), startRev, want)
	}
	compareBansOf(t, now.admin, clock.Now(), m)
}

// replay reads r's Watch stream from after revision from until revision to
// and returns its events with their revisions.
func replay(t *testing.T, r *replica, from int64, storeID string, to int64) []appliedEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream, err := r.admin.Events.Watch(ctx, &pb.WatchRequest{AfterRevision: from, StoreId: storeID})
	if err != nil {
		t.Fatal(err)
	}
	var out []appliedEvent
	for {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("replay: %v", err)
		}
		switch resp.GetPayload().(type) {
		case *pb.WatchResponse_Snapshot:
			t.Fatalf("replay from revision %d began with a snapshot", from)
		case *pb.WatchResponse_Change:
			for _, e := range resp.GetChange().GetEvents() {
				out = append(out, appliedEvent{resp.GetRevision(), eventKey(e)})
			}
		}
		if resp.GetRevision() >= to {
			return out
		}
	}
}

// TestDialReplicaList: a list of replicas takes host:port addresses only.
func TestDialReplicaList(t *testing.T) {
	for _, target := range []string{"127.0.0.1:7470,", "127.0.0.1:7470,,127.0.0.1:7480", "dns:///a:7470,b:7470", "a:7470,b"} {
		if c, err := client.Dial(target, client.WithInsecure()); err == nil {
			c.Close()
			t.Errorf("Dial(%q) succeeded", target)
		}
	}
	c, err := client.Dial("127.0.0.1:7470, 127.0.0.1:7480,[::1]:7490", client.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
