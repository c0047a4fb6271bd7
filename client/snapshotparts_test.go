package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// partBound is the authority's SnapshotPartSize in these tests: a few
// bans a part.
const partBound = 600

// fillForParts gives e's store n bans and three revoked sessions: with
// partBound, a snapshot of several parts.
func fillForParts(e *env, n int) {
	e.t.Helper()
	for i := range n {
		e.ban(&pb.CreateBanRequest{Subject: userSubject(fmt.Sprint("spammer-", i)), Reason: "spam in comments", Policy: "tos-4.2"})
	}
	for i := range 3 {
		s := e.login(&pb.CreateSessionRequest{UserId: fmt.Sprint("user-", i)}).GetSession()
		if _, err := e.admin.Sessions.RevokeSession(e.ctx(), &pb.RevokeSessionRequest{SessionId: s.GetSessionId(), Reason: "test"}); err != nil {
			e.t.Fatal(err)
		}
	}
}

// snapshotStream opens a Watch stream on e with the admin key and returns
// the parts of its snapshot, and the stream to read on.
func snapshotStream(t *testing.T, e *env) ([]*pb.WatchResponse, pb.EventService_WatchClient) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	stream, err := e.admin.Events.Watch(ctx, &pb.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var parts []*pb.WatchResponse
	for {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetSnapshot() == nil {
			t.Fatalf("message %d of the snapshot: %v", len(parts), resp)
		}
		parts = append(parts, resp)
		if !resp.GetSnapshot().GetMore() {
			return parts, stream
		}
	}
}

// notSynced fails unless m has loaded no snapshot yet.
func notSynced(t *testing.T, m *client.Mirror, step string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // WaitSynced returns at once: nil only if synced
	if err := m.WaitSynced(ctx); err == nil || m.Revision() != 0 || m.StoreID() != "" || m.Stats().Resets != 0 {
		t.Fatalf("%s: mirror synced (%v) at %q/%d with %d resets", step, err, m.StoreID(), m.Revision(), m.Stats().Resets)
	}
}

// TestMirrorSnapshotInParts: a mirror following an authority that splits
// snapshots holds exactly its bans and revoked sessions. Applied part by
// part, a snapshot changes nothing (revision, store, sync, resets, bans)
// until its last part, on a fresh mirror as on one that holds another
// store's state.
func TestMirrorSnapshotInParts(t *testing.T) {
	e := newEnv(t, envOptions{snapshotPart: partBound})
	fillForParts(e, 20)
	m := newMirror(t, e, client.MirrorOptions{})
	compareBans(t, e, m)
	if st := m.Stats(); st.Revoked != 3 || st.Keys != 1 || st.Resets != 1 || st.Revision != e.Revision() {
		t.Fatalf("after a snapshot in parts: %+v", st)
	}

	parts, _ := snapshotStream(t, e)
	if len(parts) < 3 {
		t.Fatalf("%d parts; the test needs several", len(parts))
	}
	last := parts[len(parts)-1]
	opts := client.MirrorOptions{Clock: e.Clock().Now, Logger: testLogger(t)}
	fresh := client.NewMirror(nil, opts)
	other := client.NewTestMirror("another-store", 7, &pb.Snapshot{Bans: []*pb.Ban{
		{BanId: "ban_other", TenantId: "public", Subject: userSubject("someone")}}}, opts)
	for i, p := range parts[:len(parts)-1] {
		for _, m := range []*client.Mirror{fresh, other} {
			if err := m.Apply(p); err != nil {
				t.Fatalf("part %d: %v", i, err)
			}
		}
		step := fmt.Sprintf("after part %d of %d", i+1, len(parts))
		notSynced(t, fresh, step)
		if held := other.HeldBans(e.Clock().Now()); other.StoreID() != "another-store" || other.Revision() != 7 ||
			other.Stats().Resets != 1 || len(held) != 1 || held[0].BanID != "ban_other" {
			t.Fatalf("%s: mirror of another store at %q/%d, %d resets, bans %v", step, other.StoreID(), other.Revision(), other.Stats().Resets, held)
		}
	}
	for _, m := range []*client.Mirror{fresh, other} {
		if err := m.Apply(last); err != nil {
			t.Fatal(err)
		}
		if m.StoreID() != last.GetStoreId() || m.Revision() != last.GetRevision() || m.WaitSynced(context.Background()) != nil {
			t.Fatalf("after the last part: mirror at %q/%d, want %q/%d", m.StoreID(), m.Revision(), last.GetStoreId(), last.GetRevision())
		}
		compareBansOf(t, e.admin, e.Clock().Now(), m)
		if st := m.Stats(); st.Revoked != 3 || st.Keys != 1 {
			t.Fatalf("after the last part: %+v", st)
		}
	}
}

// TestMirrorSnapshotPartsProtocol: a part of another revision, or a change
// amid a snapshot's parts, is a protocol error (Run reconnects); a stream
// that ends mid-snapshot drops the parts, so that the next stream may
// resume with changes.
func TestMirrorSnapshotPartsProtocol(t *testing.T) {
	e := newEnv(t, envOptions{snapshotPart: partBound})
	fillForParts(e, 20)
	parts, stream := snapshotStream(t, e)
	if len(parts) < 3 {
		t.Fatalf("%d parts; the test needs several", len(parts))
	}
	e.ban(&pb.CreateBanRequest{Subject: userSubject("after")})
	var change *pb.WatchResponse
	for change == nil {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetChange() != nil {
			change = resp
		}
	}
	opts := client.MirrorOptions{Clock: e.Clock().Now, Logger: testLogger(t)}

	m := client.NewMirror(nil, opts)
	if err := m.Apply(parts[0]); err != nil {
		t.Fatal(err)
	}
	later := proto.Clone(parts[1]).(*pb.WatchResponse)
	later.Revision++
	if err := m.Apply(later); err == nil {
		t.Fatal("a part of another revision was applied")
	}
	m.EndStream()
	notSynced(t, m, "after a part of another revision")
	if err := m.Apply(parts[0]); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(change); err == nil {
		t.Fatal("a change amid a snapshot's parts was applied")
	}
	notSynced(t, m, "after a change amid the parts")

	// At the snapshot's revision already, the mirror gets the first parts
	// of another snapshot, then the stream ends; the next stream resumes
	// with the change.
	whole := &pb.Snapshot{}
	for _, p := range parts {
		s := p.GetSnapshot()
		whole.Bans, whole.RevokedSessions, whole.Keys = append(whole.Bans, s.GetBans()...),
			append(whole.RevokedSessions, s.GetRevokedSessions()...), append(whole.Keys, s.GetKeys()...)
	}
	m = client.NewTestMirror(parts[0].GetStoreId(), parts[0].GetRevision(), whole, opts)
	for _, p := range parts[:2] {
		if err := m.Apply(p); err != nil {
			t.Fatal(err)
		}
	}
	m.EndStream()
	if err := m.Apply(change); err != nil {
		t.Fatalf("resuming after a stream that ended mid-snapshot: %v", err)
	}
	if m.Revision() != change.GetRevision() || m.Stats().Resets != 1 {
		t.Fatalf("mirror at %d with %d resets, want %d and 1", m.Revision(), m.Stats().Resets, change.GetRevision())
	}
	compareBansOf(t, e.admin, e.Clock().Now(), m)
}

// TestMirrorSnapshotCutMidway: the authority goes away in the middle of a
// reset snapshot (another store's): the mirror keeps its previous state,
// revision and store throughout, and loads the whole snapshot once an
// authority is back.
func TestMirrorSnapshotCutMidway(t *testing.T) {
	clock, nw := newClock(), &network{}
	a := newEnv(t, envOptions{clock: clock, net: nw})
	a.ban(&pb.CreateBanRequest{Subject: userSubject("mallory")})

	// Store B, prepared out of the mirror's reach: some 330 kB of bans, in
	// parts of 8 kB.
	const partB = 8 << 10
	b := newEnv(t, envOptions{clock: clock, net: &network{}, snapshotPart: partB})
	fillForParts(b, 0)
	reason := strings.Repeat("spam in the comments of the product pages; ", 24)[:1000]
	created := timestamppb.New(clock.Now())
	b.SeedBans(300, func(i int) *pb.Ban {
		return &pb.Ban{BanId: synthID("ban_", i), TenantId: "public", Subject: userSubject(fmt.Sprintf("user-%07d", i)),
			Reason: reason, CreatedBy: "moderation-bot", CreateTime: created}
	})
	b.Stop()

	// The gate holds the mirror before it applies the second part of a
	// snapshot, once armed. A fixed 64 KiB flow-control window (no
	// dynamic window) keeps the authority from sending the rest of the
	// snapshot while the mirror holds: stopping the authority then ends
	// the stream mid-snapshot for the mirror too.
	var armed atomic.Bool
	reached, release := make(chan struct{}), make(chan struct{})
	afterMore := false // touched only in Run's goroutine
	var logs syncBuffer
	m := newMirror(t, a, client.WithBeforeApply(client.MirrorOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))},
		func(resp *pb.WatchResponse) {
			if resp.GetSnapshot() != nil && afterMore && armed.CompareAndSwap(true, false) {
				close(reached)
				<-release
			}
			afterMore = resp.GetSnapshot().GetMore()
		}), grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	t.Cleanup(sync.OnceFunc(func() { close(release) })) // before the mirror's cleanup, which waits for Run
	storeA, revA := m.StoreID(), m.Revision()
	bansA := m.HeldBans(clock.Now())
	unchanged := func(step string) {
		t.Helper()
		if m.StoreID() != storeA || m.Revision() != revA || m.Stats().Resets != 1 ||
			!slices.EqualFunc(m.HeldBans(clock.Now()), bansA, func(x, y client.HeldBan) bool { return x.BanID == y.BanID }) {
			t.Fatalf("%s: mirror at %q/%d (%d resets) with %d bans; want %q/%d with %v",
				step, m.StoreID(), m.Revision(), m.Stats().Resets, len(m.HeldBans(clock.Now())), storeA, revA, bansA)
		}
	}
	ended := func() int { return strings.Count(logs.String(), "watch stream ended") }

	armed.Store(true)
	a.Stop()
	b.Restart()
	nw.use(b)
	nw.key.Store(&b.AdminKey)
	select {
	case <-reached:
	case <-time.After(time.Minute):
		t.Fatal("the mirror never got the second part of store B's snapshot")
	}
	unchanged("with the first part of B's snapshot applied")
	b.Stop() // the stream ends mid-snapshot
	before := ended()
	release <- struct{}{}
	eventually(t, "the mirror to see B's stream end", func() bool { return ended() > before })
	unchanged("after the stream ended mid-snapshot")

	// B moves on meanwhile: its next snapshot is at another revision, which
	// parts of the unfinished one would be a protocol error with.
	nw.use(nil)
	b.Restart()
	b.ban(&pb.CreateBanRequest{Subject: userSubject("late")})
	b.Stop()
	b.Restart()
	nw.use(b)
	eventually(t, "the mirror to load store B", func() bool { return m.StoreID() == b.StoreID() })
	if st := m.Stats(); st.Resets != 2 || st.Revision != b.Revision() || st.Revoked != 3 {
		t.Fatalf("after store B's snapshot: %+v", st)
	}
	compareBans(t, b, m)
	if strings.Contains(logs.String(), "snapshot part") {
		t.Fatalf("the mirror did not load B's snapshot on its first stream after B came back:\n%s", logs.String())
	}
}
