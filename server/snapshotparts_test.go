package server_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/server"
)

// snapshotParts receives a snapshot's parts, from the first up to the one
// without more, and fails unless they are consecutive snapshot messages
// of one revision and store.
func (w *watchStream) snapshotParts() []*pb.WatchResponse {
	w.t.Helper()
	parts := []*pb.WatchResponse{w.recvSkippingCheckpoints(-1)}
	for {
		last := parts[len(parts)-1]
		if last.GetSnapshot() == nil {
			w.t.Fatalf("message %d of the snapshot: %v, want a snapshot part", len(parts), last)
		}
		if first := parts[0]; last.GetRevision() != first.GetRevision() || last.GetStoreId() != first.GetStoreId() {
			w.t.Fatalf("part %d at %s/%d, the first at %s/%d", len(parts), last.GetStoreId(), last.GetRevision(), first.GetStoreId(), first.GetRevision())
		}
		if !last.GetSnapshot().GetMore() {
			return parts
		}
		parts = append(parts, w.recv()) // no checkpoint comes between parts
	}
}

// activeBanIDs lists the IDs of the authority's active bans (ListBans),
// sorted.
func (e *env) activeBanIDs() []string {
	e.t.Helper()
	var ids []string
	req := &pb.ListBansRequest{State: pb.BanState_BAN_STATE_ACTIVE, PageSize: 1000}
	for {
		resp, err := e.bans.ListBans(e.admin(), req)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, b := range resp.GetBans() {
			ids = append(ids, b.GetBanId())
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	slices.Sort(ids)
	return ids
}

// TestWatchSnapshotInParts: with a small part size, a snapshot arrives in
// several parts of one revision and store: more on all but the last, the
// keys in the first, each part's encoding within the bound unless it
// holds one element larger than the bound by itself, the subscriber_id on
// the first only; together they are the active bans and revoked sessions,
// each once. The stream then goes on with the next change.
func TestWatchSnapshotInParts(t *testing.T) {
	const bound = 700
	e := newEnv(t, envOptions{server: server.Options{SnapshotPartSize: bound}})
	f := newWatchFixture(e)
	for i := range 24 {
		e.ban(&pb.CreateBanRequest{Subject: userSubject(fmt.Sprint("spammer-", i)), Reason: "spam in comments", Policy: "tos-4.2"})
	}
	huge := e.ban(&pb.CreateBanRequest{Subject: userSubject("verbose"), Reason: strings.Repeat("r", 1000)}).GetBan()
	revoked := []string{f.revoked.GetSessionId()}
	for i := range 6 {
		s := e.login(&pb.CreateSessionRequest{UserId: fmt.Sprint("user-", i)}).GetSession()
		e.revokeSession(s.GetSessionId())
		revoked = append(revoked, s.GetSessionId())
	}
	r := e.revision()

	w := e.watch(t, nil, &pb.WatchRequest{Identity: &pb.MirrorIdentity{Service: "test"}})
	parts := w.snapshotParts()
	if len(parts) < 3 {
		t.Fatalf("%d parts, want several with a %d-byte bound", len(parts), bound)
	}
	var bans, sessions []string
	for i, p := range parts {
		snap := p.GetSnapshot()
		if p.GetRevision() != r {
			t.Fatalf("part %d at revision %d, want %d", i, p.GetRevision(), r)
		}
		if snap.GetMore() != (i < len(parts)-1) {
			t.Errorf("part %d of %d: more = %v", i, len(parts), snap.GetMore())
		}
		if (p.GetSubscriberId() != "") != (i == 0) {
			t.Errorf("part %d: subscriber_id %q", i, p.GetSubscriberId())
		}
		if (len(snap.GetKeys()) > 0) != (i == 0) {
			t.Errorf("part %d has %d keys; want the key in the first part only", i, len(snap.GetKeys()))
		}
		n := len(snap.GetBans()) + len(snap.GetRevokedSessions()) + len(snap.GetKeys())
		if size := proto.Size(p); size > bound && n != 1 {
			t.Errorf("part %d: %d bytes, over the %d-byte bound with %d elements", i, size, bound, n)
		} else if n == 0 {
			t.Errorf("part %d is empty", i)
		}
		for _, b := range snap.GetBans() {
			bans = append(bans, b.GetBanId())
			if b.GetBanId() == huge.GetBanId() && (n != 1 || proto.Size(p) <= bound) {
				t.Errorf("the ban larger than the bound is in part %d of %d bytes with %d elements; want it alone", i, proto.Size(p), n)
			}
		}
		for _, rs := range snap.GetRevokedSessions() {
			sessions = append(sessions, rs.GetSessionId())
		}
	}
	slices.Sort(bans)
	if want := e.activeBanIDs(); !slices.Equal(bans, want) {
		t.Fatalf("the parts hold bans %v, ListBans has %v", bans, want)
	}
	if got, want := sorted(sessions...), sorted(revoked...); !slices.Equal(got, want) {
		t.Fatalf("the parts hold revoked sessions %v, want %v", got, want)
	}

	b := e.ban(&pb.CreateBanRequest{Subject: userSubject("after")}).GetBan()
	if got := oneEvent(t, w.change(r, r+1)).GetBanCreated().GetBanId(); got != b.GetBanId() {
		t.Fatalf("after the snapshot got ban %s, want %s", got, b.GetBanId())
	}
}

// TestWatchEmptySnapshotOnePart: an empty store's snapshot (no ban, no
// revoked session) is still exactly one part, with the key.
func TestWatchEmptySnapshotOnePart(t *testing.T) {
	e := newEnv(t, envOptions{server: server.Options{SnapshotPartSize: 1}})
	w := e.watch(t, nil, &pb.WatchRequest{})
	parts := w.snapshotParts()
	if len(parts) != 1 || len(parts[0].GetSnapshot().GetKeys()) != 1 || len(parts[0].GetSnapshot().GetBans()) != 0 {
		t.Fatalf("empty store's snapshot: %v", parts)
	}
}

// TestWatchLargeSnapshotDefaultLimit: a snapshot larger than gRPC's
// default 4 MiB receive limit reaches a client that keeps that default
// (e.conn sets no limit), in parts within DefaultSnapshotPartSize.
func TestWatchLargeSnapshotDefaultLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 5 MB of bans")
	}
	e := newEnv(t, envOptions{})
	// Few large bans (a reason of close to the 1024-byte limit) straight
	// into the store in one transaction: the bytes are what matters, and
	// the race detector makes each ban written cost.
	const n = 5000
	reason := strings.Repeat("spam in the comments of the product pages; ", 24)[:1000]
	now := e.clock.Now()
	_, err := e.store.Update(context.Background(), func(tx storage.Tx) error {
		for i := range n {
			err := tx.PutBan(storage.Ban{ID: fmt.Sprintf("ban_large%021d", i), TenantID: "public", Kind: storage.SubjectUser,
				Value: fmt.Sprintf("user-%07d", i), Reason: reason, Policy: "tos-4.2", CreatedBy: "moderation-bot", CreateTime: now})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	w := e.watch(t, nil, &pb.WatchRequest{})
	parts := w.snapshotParts()
	total, bans := 0, 0
	for i, p := range parts {
		size := proto.Size(p)
		if size > server.DefaultSnapshotPartSize {
			t.Errorf("part %d: %d bytes, over DefaultSnapshotPartSize", i, size)
		}
		total += size
		bans += len(p.GetSnapshot().GetBans())
	}
	if total <= 4<<20 {
		t.Fatalf("the snapshot is %d bytes: the test needs more than 4 MiB", total)
	}
	if bans != n {
		t.Fatalf("%d bans in %d parts, want %d", bans, len(parts), n)
	}
}
