package server_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/server"
)

// recvTimeout bounds every wait for a stream message. It is generous: a
// message that is due arrives in milliseconds, and a test only reaches the
// bound when it is failing anyway.
const recvTimeout = time.Minute

// revision returns the store's current revision.
func (e *env) revision() int64 {
	e.t.Helper()
	var rev int64
	if err := e.store.View(context.Background(), func(tx storage.ReadTx) error {
		rev = tx.Revision()
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return rev
}

// watchStream is an open Watch stream with its store's ID, for checks.
type watchStream struct {
	t       testing.TB
	stream  pb.EventService_WatchClient
	storeID string
	cancel  context.CancelFunc
}

// watch opens a Watch stream with ctx (e.admin() when nil); it ends when the
// test does, or earlier with close.
func (e *env) watch(t testing.TB, ctx context.Context, req *pb.WatchRequest) *watchStream {
	t.Helper()
	if ctx == nil {
		ctx = e.admin()
	}
	ctx, cancel := context.WithTimeout(ctx, recvTimeout)
	t.Cleanup(cancel)
	stream, err := e.events.Watch(ctx, req)
	if err != nil {
		t.Fatalf("Watch(%v): %v", req, err)
	}
	return &watchStream{t: t, stream: stream, storeID: e.store.StoreID(), cancel: cancel}
}

func (w *watchStream) close() { w.cancel() }

// recv returns the next message, checking the fields every message has.
func (w *watchStream) recv() *pb.WatchResponse {
	w.t.Helper()
	msg, err := w.stream.Recv()
	if err != nil {
		w.t.Fatalf("Watch Recv: %v", err)
	}
	if msg.GetStoreId() != w.storeID {
		w.t.Fatalf("message has store_id %q, want %q", msg.GetStoreId(), w.storeID)
	}
	if msg.GetServerTime() == nil {
		w.t.Fatalf("message without server_time: %v", msg)
	}
	if msg.GetPayload() == nil {
		w.t.Fatalf("message without payload: %v", msg)
	}
	return msg
}

// recvSkippingCheckpoints returns the next snapshot or change. The
// checkpoints before it must carry the revision the stream is at.
func (w *watchStream) recvSkippingCheckpoints(at int64) *pb.WatchResponse {
	w.t.Helper()
	for {
		msg := w.recv()
		if msg.GetCheckpoint() == nil {
			return msg
		}
		if msg.GetRevision() != at {
			w.t.Fatalf("checkpoint at revision %d, want %d", msg.GetRevision(), at)
		}
	}
}

// snapshot receives the next message and fails unless it is a whole
// snapshot in one part (as every snapshot smaller than the part size is).
func (w *watchStream) snapshot() *pb.WatchResponse {
	w.t.Helper()
	msg := w.recvSkippingCheckpoints(-1)
	if msg.GetSnapshot() == nil {
		w.t.Fatalf("got %v, want a snapshot", msg)
	}
	if msg.GetSnapshot().GetMore() {
		w.t.Fatalf("snapshot at revision %d in more than one part", msg.GetRevision())
	}
	return msg
}

// change receives the next change (skipping checkpoints at revision
// after) and fails unless it has revision rev.
func (w *watchStream) change(after, rev int64) *pb.WatchResponse {
	w.t.Helper()
	msg := w.recvSkippingCheckpoints(after)
	if msg.GetChange() == nil {
		w.t.Fatalf("got %v, want the change at revision %d", msg, rev)
	}
	if msg.GetRevision() != rev {
		w.t.Fatalf("got the change at revision %d (%v), want revision %d", msg.GetRevision(), msg.GetChange(), rev)
	}
	return msg
}

// oneEvent fails unless the change has exactly one event, and returns it.
func oneEvent(t testing.TB, msg *pb.WatchResponse) *pb.Event {
	t.Helper()
	evs := msg.GetChange().GetEvents()
	if len(evs) != 1 {
		t.Fatalf("change %d has %d events, want 1: %v", msg.GetRevision(), len(evs), evs)
	}
	if evs[0].GetTime() == nil {
		t.Fatalf("event without time: %v", evs[0])
	}
	return evs[0]
}

func (e *env) ban(req *pb.CreateBanRequest) *pb.CreateBanResponse {
	e.t.Helper()
	resp, err := e.bans.CreateBan(e.admin(), req)
	if err != nil {
		e.t.Fatalf("CreateBan(%v): %v", req, err)
	}
	return resp
}

func (e *env) lift(id string) *pb.Ban {
	e.t.Helper()
	resp, err := e.bans.LiftBan(e.admin(), &pb.LiftBanRequest{BanId: id, Reason: "test"})
	if err != nil {
		e.t.Fatalf("LiftBan(%s): %v", id, err)
	}
	return resp.GetBan()
}

func (e *env) revokeSession(id string) *pb.Session {
	e.t.Helper()
	resp, err := e.sessions.RevokeSession(e.admin(), &pb.RevokeSessionRequest{SessionId: id, Reason: "test"})
	if err != nil {
		e.t.Fatalf("RevokeSession(%s): %v", id, err)
	}
	return resp.GetSession()
}

func banIDs(bans []*pb.Ban) []string {
	var ids []string
	for _, b := range bans {
		ids = append(ids, b.GetBanId())
	}
	slices.Sort(ids)
	return ids
}

func sorted(ids ...string) []string {
	return slices.Sorted(slices.Values(ids))
}

// watchFixture is state for the Watch tests: an active ban, a lifted one,
// a revoked session and a live one.
type watchFixture struct {
	active, lifted *pb.Ban
	revoked, live  *pb.Session
}

func newWatchFixture(e *env) watchFixture {
	var f watchFixture
	f.active = e.ban(&pb.CreateBanRequest{Subject: userSubject("mallory"), Duration: "1h"}).GetBan()
	f.lifted = e.lift(e.ban(&pb.CreateBanRequest{Subject: ipSubject("198.51.100.0/24")}).GetBan().GetBanId())
	f.revoked = e.login(&pb.CreateSessionRequest{UserId: "bob"}).GetSession()
	e.revokeSession(f.revoked.GetSessionId())
	f.live = e.login(&pb.CreateSessionRequest{UserId: "alice"}).GetSession()
	return f
}

// TestWatchSnapshotThenChanges: after_revision 0 starts with a snapshot of
// the active bans, the revoked sessions and the keys at revision R, then
// every change after R, in order, each under the next revision.
func TestWatchSnapshotThenChanges(t *testing.T) {
	e := newEnv(t, envOptions{})
	f := newWatchFixture(e)
	r := e.revision()

	w := e.watch(t, nil, &pb.WatchRequest{AfterRevision: 0})
	msg := w.snapshot()
	if msg.GetRevision() != r {
		t.Fatalf("snapshot at revision %d, want %d", msg.GetRevision(), r)
	}
	snap := msg.GetSnapshot()
	if got, want := banIDs(snap.GetBans()), sorted(f.active.GetBanId()); !slices.Equal(got, want) {
		t.Errorf("snapshot bans %v, want only the active ban %v", got, want)
	}
	for _, b := range snap.GetBans() {
		if b.GetState() != pb.BanState_BAN_STATE_ACTIVE {
			t.Errorf("snapshot ban %s in state %v", b.GetBanId(), b.GetState())
		}
	}
	if rs := snap.GetRevokedSessions(); len(rs) != 1 || rs[0].GetSessionId() != f.revoked.GetSessionId() ||
		rs[0].GetUserId() != "bob" || rs[0].GetAccessExpireTime() == nil || rs[0].GetRevokeTime() == nil {
		t.Errorf("snapshot revoked sessions %v, want only %s with its times", rs, f.revoked.GetSessionId())
	}
	keys, err := e.keys.ListKeys(e.admin(), &pb.ListKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.GetKeys()) != 1 || snap.GetKeys()[0].GetKeyId() != keys.GetKeys()[0].GetKeyId() ||
		len(snap.GetKeys()[0].GetPublicKey()) != 32 || snap.GetKeys()[0].GetAlgorithm() != "EdDSA" {
		t.Errorf("snapshot keys %v, want the signing key %v", snap.GetKeys(), keys.GetKeys())
	}

	// Live changes, one revision each.
	nb := e.ban(&pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_DeviceId{DeviceId: "d9"}}, Capabilities: []string{"post"}}).GetBan()
	ev := oneEvent(t, w.change(r, r+1))
	if ev.GetBanCreated().GetBanId() != nb.GetBanId() || !slices.Equal(ev.GetBanCreated().GetCapabilities(), []string{"post"}) {
		t.Fatalf("change %d: %v, want ban_created %s", r+1, ev, nb.GetBanId())
	}
	e.revokeSession(f.live.GetSessionId())
	ev = oneEvent(t, w.change(r+1, r+2))
	if rs := ev.GetSessionRevoked(); rs.GetSessionId() != f.live.GetSessionId() || rs.GetReason() != "test" || rs.GetUserId() != "alice" {
		t.Fatalf("change %d: %v, want session_revoked %s", r+2, ev, f.live.GetSessionId())
	}
	e.lift(f.active.GetBanId())
	ev = oneEvent(t, w.change(r+2, r+3))
	if bl := ev.GetBanLifted(); bl.GetBanId() != f.active.GetBanId() || bl.GetState() != pb.BanState_BAN_STATE_LIFTED || bl.GetLiftTime() == nil {
		t.Fatalf("change %d: %v, want ban_lifted %s", r+3, ev, f.active.GetBanId())
	}
	// A write without a verifier-visible effect (a login) gets no revision:
	// the next change is r+4.
	e.login(&pb.CreateSessionRequest{UserId: "carol"})
	if _, err := e.keys.RotateKey(e.admin(), &pb.RotateKeyRequest{Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	msg = w.change(r+3, r+4)
	evs := msg.GetChange().GetEvents()
	if len(evs) != 2 || evs[0].GetKeyAdded() == nil || evs[1].GetKeyRetired() == nil ||
		evs[1].GetKeyRetired().GetKeyId() != keys.GetKeys()[0].GetKeyId() || evs[1].GetKeyRetired().GetVerifyUntil() == nil {
		t.Fatalf("key rotation change: %v, want key_added then key_retired of %s", evs, keys.GetKeys()[0].GetKeyId())
	}
}

// TestWatchResume: a Watch from a middle revision (with the right
// store_id, or none) delivers exactly the later changes, none twice, and
// no snapshot.
func TestWatchResume(t *testing.T) {
	e := newEnv(t, envOptions{})
	var revs []int64
	var ids []string
	for i := range 5 {
		b := e.ban(&pb.CreateBanRequest{Subject: userSubject("u" + string(rune('a'+i)))}).GetBan()
		revs, ids = append(revs, e.revision()), append(ids, b.GetBanId())
	}
	for name, storeID := range map[string]string{"right store_id": e.store.StoreID(), "no store_id": ""} {
		t.Run(name, func(t *testing.T) {
			mid := revs[1]
			w := e.watch(t, nil, &pb.WatchRequest{AfterRevision: mid, StoreId: storeID})
			for i := 2; i < len(revs); i++ {
				msg := w.recvSkippingCheckpoints(revs[i-1])
				if msg.GetSnapshot() != nil {
					t.Fatalf("resume from %d began with a snapshot", mid)
				}
				if msg.GetRevision() != revs[i] {
					t.Fatalf("got revision %d, want %d", msg.GetRevision(), revs[i])
				}
				if got := oneEvent(t, msg).GetBanCreated().GetBanId(); got != ids[i] {
					t.Fatalf("revision %d carries ban %s, want %s", revs[i], got, ids[i])
				}
			}
			// Nothing else is pending: the next message is the next write.
			last := revs[len(revs)-1]
			marker := e.ban(&pb.CreateBanRequest{Subject: userSubject("marker-" + storeID)}).GetBan()
			revs, ids = append(revs, last+1), append(ids, marker.GetBanId())
			if got := oneEvent(t, w.change(last, last+1)).GetBanCreated().GetBanId(); got != marker.GetBanId() {
				t.Fatalf("got ban %s, want the marker %s", got, marker.GetBanId())
			}
		})
	}
	// Resuming at the head delivers nothing until the next write.
	head := e.revision()
	w := e.watch(t, nil, &pb.WatchRequest{AfterRevision: head, StoreId: e.store.StoreID()})
	e.ban(&pb.CreateBanRequest{Subject: userSubject("after-head")})
	w.change(head, head+1)
}

// TestWatchOtherStoreResets: a store_id other than the authority's, with
// a revision this store has too, gets a reset snapshot first; so does a
// revision this store has not reached.
func TestWatchOtherStoreResets(t *testing.T) {
	e := newEnv(t, envOptions{})
	f := newWatchFixture(e)
	r := e.revision()
	for _, req := range []*pb.WatchRequest{
		{AfterRevision: 1, StoreId: "some-other-store"},
		{AfterRevision: r, StoreId: "some-other-store"},
		{AfterRevision: r + 1000, StoreId: e.store.StoreID()},
		{AfterRevision: r + 1000},
	} {
		w := e.watch(t, nil, req)
		msg := w.snapshot()
		if msg.GetRevision() != r {
			t.Fatalf("Watch(%v): snapshot at %d, want %d", req, msg.GetRevision(), r)
		}
		if got := banIDs(msg.GetSnapshot().GetBans()); !slices.Equal(got, []string{f.active.GetBanId()}) {
			t.Fatalf("Watch(%v): snapshot bans %v", req, got)
		}
		w.close()
	}
}

// TestWatchCheckpoint: an idle stream gets checkpoints carrying the last
// revision, before and after a change.
func TestWatchCheckpoint(t *testing.T) {
	e := newEnv(t, envOptions{server: server.Options{CheckpointInterval: 50 * time.Millisecond}})
	newWatchFixture(e)
	r := e.revision()
	w := e.watch(t, nil, &pb.WatchRequest{})
	if msg := w.snapshot(); msg.GetRevision() != r {
		t.Fatalf("snapshot at %d, want %d", msg.GetRevision(), r)
	}
	msg := w.recv()
	if msg.GetCheckpoint() == nil || msg.GetRevision() != r {
		t.Fatalf("got %v, want a checkpoint at revision %d", msg, r)
	}
	e.ban(&pb.CreateBanRequest{Subject: userSubject("u1")})
	w.change(r, r+1)
	msg = w.recv()
	if msg.GetCheckpoint() == nil || msg.GetRevision() != r+1 {
		t.Fatalf("got %v, want a checkpoint at revision %d", msg, r+1)
	}
}

// TestWatchCompacted: a Watch from a revision the log no longer holds gets
// a reset snapshot, then only changes after it; one from the oldest
// retained revision gets the retained changes.
func TestWatchCompacted(t *testing.T) {
	e := newEnv(t, envOptions{store: bolt.Options{RetainRevisions: 3}})
	var ids []string
	for i := range 10 {
		ids = append(ids, e.ban(&pb.CreateBanRequest{Subject: userSubject("u" + string(rune('a'+i)))}).GetBan().GetBanId())
	}
	r := e.revision()
	if r < 10 {
		t.Fatalf("revision %d after 10 bans", r)
	}

	w := e.watch(t, nil, &pb.WatchRequest{AfterRevision: 1, StoreId: e.store.StoreID()})
	msg := w.snapshot()
	if msg.GetRevision() != r {
		t.Fatalf("reset snapshot at %d, want %d", msg.GetRevision(), r)
	}
	if got := banIDs(msg.GetSnapshot().GetBans()); !slices.Equal(got, sorted(ids...)) {
		t.Fatalf("snapshot bans %v, want %v", got, ids)
	}
	marker := e.ban(&pb.CreateBanRequest{Subject: userSubject("marker")}).GetBan()
	if got := oneEvent(t, w.change(r, r+1)).GetBanCreated().GetBanId(); got != marker.GetBanId() {
		t.Fatalf("after the snapshot got ban %s, want %s", got, marker.GetBanId())
	}
	r++

	// The oldest position still retained resumes without a reset; one
	// before it does not.
	oldest := r - 3
	w = e.watch(t, nil, &pb.WatchRequest{AfterRevision: oldest, StoreId: e.store.StoreID()})
	for rev := oldest + 1; rev <= r; rev++ {
		w.change(rev-1, rev)
	}
	w = e.watch(t, nil, &pb.WatchRequest{AfterRevision: oldest - 1, StoreId: e.store.StoreID()})
	if msg := w.snapshot(); msg.GetRevision() != r {
		t.Fatalf("reset snapshot at %d, want %d", msg.GetRevision(), r)
	}
}

// TestWatchBanRevokingSessionsIsOneChange: a full user ban that revokes two
// sessions arrives as one change: ban_created and two session_revoked
// events under one revision.
func TestWatchBanRevokingSessionsIsOneChange(t *testing.T) {
	e := newEnv(t, envOptions{})
	s1 := e.login(&pb.CreateSessionRequest{UserId: "carol"}).GetSession()
	s2 := e.login(&pb.CreateSessionRequest{UserId: "carol", DeviceId: "d2"}).GetSession()
	other := e.login(&pb.CreateSessionRequest{UserId: "dave"}).GetSession()
	e.login(&pb.CreateSessionRequest{UserId: "carol", TenantId: "elsewhere"})
	r := e.revision()
	w := e.watch(t, nil, &pb.WatchRequest{AfterRevision: r})

	resp := e.ban(&pb.CreateBanRequest{Subject: userSubject("carol"), Reason: "abuse"})
	if resp.GetRevokedSessions() != 2 {
		t.Fatalf("revoked_sessions = %d, want 2", resp.GetRevokedSessions())
	}
	msg := w.change(r, r+1)
	evs := msg.GetChange().GetEvents()
	if len(evs) != 3 {
		t.Fatalf("change has %d events, want 3: %v", len(evs), evs)
	}
	if evs[0].GetBanCreated().GetBanId() != resp.GetBan().GetBanId() {
		t.Fatalf("first event %v, want ban_created %s", evs[0], resp.GetBan().GetBanId())
	}
	var revoked []string
	for _, ev := range evs[1:] {
		rs := ev.GetSessionRevoked()
		if rs == nil || rs.GetReason() != "ban "+resp.GetBan().GetBanId() {
			t.Fatalf("event %v, want session_revoked by the ban", ev)
		}
		revoked = append(revoked, rs.GetSessionId())
	}
	if got, want := sorted(revoked...), sorted(s1.GetSessionId(), s2.GetSessionId()); !slices.Equal(got, want) {
		t.Fatalf("revoked %v, want %v", got, want)
	}
	if e.revision() != r+1 {
		t.Fatalf("revision %d after the ban, want %d", e.revision(), r+1)
	}
	got, err := e.sessions.GetSession(e.admin(), &pb.GetSessionRequest{SessionId: other.GetSessionId()})
	if err != nil || got.GetSession().GetRevokeTime() != nil {
		t.Fatalf("another user's session: %v, %v; want it live", got, err)
	}
}

// TestListSubscribers: an open watcher is listed with its caller, address,
// connect time and revision, and is gone once its stream ends.
func TestListSubscribers(t *testing.T) {
	e := newEnv(t, envOptions{})
	mirror := e.keyWith("mirror-1", authority.ScopeEventsWatch)
	newWatchFixture(e)
	r := e.revision()
	w := e.watch(t, as(mirror), &pb.WatchRequest{})
	w.snapshot()

	// The revision is recorded just after the send returns, so wait (on
	// round trips, not on a timer) until the server has caught up.
	ctx, cancel := context.WithTimeout(context.Background(), recvTimeout)
	defer cancel()
	subscribersUntil := func(ok func([]*pb.Subscriber) bool) []*pb.Subscriber {
		t.Helper()
		for {
			resp, err := e.events.ListSubscribers(as(mirror), &pb.ListSubscribersRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if ok(resp.GetSubscribers()) {
				return resp.GetSubscribers()
			}
			if ctx.Err() != nil {
				t.Fatalf("subscribers %v never became what the test wants", resp.GetSubscribers())
			}
		}
	}
	subs := subscribersUntil(func(s []*pb.Subscriber) bool { return len(s) == 1 && s[0].GetRevision() == r })
	if s := subs[0]; s.GetCaller() != "mirror-1" || s.GetPeerAddress() == "" || s.GetConnectTime() == nil {
		t.Fatalf("subscriber %v, want caller mirror-1 with its address and connect time", s)
	}

	e.ban(&pb.CreateBanRequest{Subject: userSubject("u1")})
	w.change(r, r+1)
	subscribersUntil(func(s []*pb.Subscriber) bool { return len(s) == 1 && s[0].GetRevision() == r+1 })

	w.close()
	subscribersUntil(func(s []*pb.Subscriber) bool { return len(s) == 0 })

	// A caller without events:watch may not list them.
	_, err := e.events.ListSubscribers(as(e.keyWith("reader", authority.ScopeBansRead)), &pb.ListSubscribersRequest{})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("ListSubscribers without events:watch: %v", err)
	}
}

// TestWatchSharedEncoding: the snapshot and the changes are encoded once
// and shared among streams; each stream still gets them whole, a
// reporting subscriber its own subscriber_id in the first response only,
// and a stream that asked for compression gets the same messages.
func TestWatchSharedEncoding(t *testing.T) {
	e := newEnv(t, envOptions{})
	f := newWatchFixture(e)
	r := e.revision()

	plain := e.watch(t, nil, &pb.WatchRequest{})
	reporting := e.watch(t, nil, &pb.WatchRequest{Identity: &pb.MirrorIdentity{Service: "test"}})
	ctx, cancel := context.WithTimeout(e.admin(), recvTimeout)
	t.Cleanup(cancel)
	zs, err := e.events.Watch(ctx, &pb.WatchRequest{}, grpc.UseCompressor(gzip.Name))
	if err != nil {
		t.Fatal(err)
	}
	gzipped := &watchStream{t: t, stream: zs, storeID: e.store.StoreID(), cancel: cancel}
	streams := []*watchStream{plain, reporting, gzipped}

	var first *pb.WatchResponse
	for i, w := range streams {
		msg := w.snapshot()
		if id := msg.GetSubscriberId(); (id != "") != (w == reporting) {
			t.Errorf("stream %d: snapshot subscriber_id %q", i, id)
		}
		msg.SubscriberId = ""
		if got := banIDs(msg.GetSnapshot().GetBans()); msg.GetRevision() != r || !slices.Equal(got, sorted(f.active.GetBanId())) {
			t.Fatalf("stream %d: snapshot at %d with bans %v", i, msg.GetRevision(), got)
		}
		if first == nil {
			first = msg
		} else if !proto.Equal(msg, first) {
			t.Errorf("stream %d: snapshot %v, stream 0 got %v", i, msg, first)
		}
	}
	for rev := r + 1; rev <= r+3; rev++ {
		e.ban(&pb.CreateBanRequest{Subject: userSubject(fmt.Sprint("u", rev))})
		first = nil
		for i, w := range streams {
			msg := w.change(rev-1, rev)
			if msg.GetSubscriberId() != "" {
				t.Errorf("stream %d: change %d has subscriber_id %q", i, rev, msg.GetSubscriberId())
			}
			if oneEvent(t, msg).GetBanCreated() == nil {
				t.Fatalf("stream %d: change %d: %v", i, rev, msg)
			}
			if first == nil {
				first = msg
			} else if !proto.Equal(msg, first) {
				t.Errorf("stream %d: change %v, stream 0 got %v", i, msg, first)
			}
		}
	}
}
