package server_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd/etcdtest"
)

// banFixture is one authority, on either backend, as the big-ban tests
// drive it.
type banFixture struct {
	auth     *authority.Authority
	sessions pb.SessionServiceClient
	bans     pb.BanServiceClient
	events   pb.EventServiceClient
	admin    string
	// oneChange: the backend commits a ban and all its revocations as one
	// change (bolt has no bound on a transaction).
	oneChange bool
}

// TestBanManySessions bans subjects with more live sessions than one etcd
// transaction can revoke (etcd's default --max-txn-ops is 128), on bolt and
// on an embedded etcd: the ban is created, every session it matches is
// revoked and reaches the Watch stream, and none can be refreshed.
func TestBanManySessions(t *testing.T) {
	clock := &testClock{now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	m := etcdtest.Start(t, etcdtest.Config{})
	backends := []struct {
		name string
		open func(t *testing.T) banFixture
	}{
		{"bolt", func(t *testing.T) banFixture {
			e := newEnv(t, envOptions{clock: clock})
			return banFixture{auth: e.auth, sessions: e.sessions, bans: e.bans, events: e.events, admin: e.adminKey, oneChange: true}
		}},
		{"etcd", func(t *testing.T) banFixture {
			rs, admin := bootstrapReplicas(t, 1, clock.Now, m)
			r := rs[0]
			return banFixture{auth: r.auth, sessions: r.sessions, bans: r.bans, events: r.events, admin: admin}
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			f := b.open(t)
			t.Run("User", func(t *testing.T) {
				const n = 300
				var banned, others []*pb.CreateSessionRequest
				for i := range n {
					banned = append(banned, &pb.CreateSessionRequest{TenantId: "t1", UserId: "mallory", ClientIp: fmt.Sprintf("198.51.100.%d", i%250+1)})
				}
				for i := range 5 {
					others = append(others, &pb.CreateSessionRequest{TenantId: "t1", UserId: "bob" + strconv.Itoa(i)})
				}
				f.banMany(t, &pb.CreateBanRequest{TenantId: "t1", Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "mallory"}}, Reason: "spam"},
					banned, others)
			})
			t.Run("IP", func(t *testing.T) {
				const n = 150
				var banned, others []*pb.CreateSessionRequest
				for i := range n {
					banned = append(banned, &pb.CreateSessionRequest{TenantId: "t2", UserId: "u" + strconv.Itoa(i%7), ClientIp: fmt.Sprintf("10.20.%d.%d", i%3, i+1)})
				}
				for i := range 5 {
					others = append(others, &pb.CreateSessionRequest{TenantId: "t2", UserId: "u" + strconv.Itoa(i), ClientIp: "10.21.0." + strconv.Itoa(i+1)})
				}
				f.banMany(t, &pb.CreateBanRequest{TenantId: "t2", Subject: &pb.Subject{Kind: &pb.Subject_Ip{Ip: "10.20.0.0/16"}}, Reason: "botnet"},
					banned, others)
			})
		})
	}
}

// login creates the sessions of reqs, several at a time, and returns them
// in the order of reqs.
func (f banFixture) login(t *testing.T, reqs []*pb.CreateSessionRequest) []*pb.CreateSessionResponse {
	t.Helper()
	out := make([]*pb.CreateSessionResponse, len(reqs))
	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	const workers = 16
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(reqs); i += workers {
				out[i], errs[i] = f.sessions.CreateSession(as(f.admin), reqs[i])
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("CreateSession(%v): %v", reqs[i], err)
		}
	}
	return out
}

// banMany logs banned and others in, creates ban (which matches exactly
// the sessions of banned), and checks what everyone sees afterwards.
func (f banFixture) banMany(t *testing.T, ban *pb.CreateBanRequest, banned, others []*pb.CreateSessionRequest) {
	victims := f.login(t, banned)
	bystanders := f.login(t, others)
	want := map[string]bool{}
	for _, v := range victims {
		want[v.GetSession().GetSessionId()] = true
	}

	ctx, cancel := context.WithTimeout(as(f.admin), recvTimeout)
	defer cancel()
	stream, err := f.events.Watch(ctx, &pb.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if msg, err := stream.Recv(); err != nil || msg.GetSnapshot() == nil {
		t.Fatalf("first Watch message: %v, %v; want a snapshot", msg, err)
	}

	resp, err := f.bans.CreateBan(as(f.admin), ban)
	if err != nil {
		t.Fatalf("CreateBan matching %d sessions: %v", len(victims), err)
	}
	banID := resp.GetBan().GetBanId()
	if got := resp.GetRevokedSessions(); int(got) != len(victims) {
		t.Fatalf("CreateBan revoked %d sessions, want %d", got, len(victims))
	}

	// The stream carries the ban first, then every revocation, once each.
	var banRev int64
	revs := map[int64]bool{}
	seen := map[string]bool{}
	for len(seen) < len(want) {
		msg := recvChange(t, stream)
		for _, ev := range msg.GetChange().GetEvents() {
			switch {
			case ev.GetBanCreated().GetBanId() == banID:
				banRev = msg.GetRevision()
			case ev.GetSessionRevoked() != nil:
				id := ev.GetSessionRevoked().GetSessionId()
				if !want[id] || seen[id] {
					t.Fatalf("revocation of session %s: not one the ban matches, or again", id)
				}
				if banRev == 0 {
					t.Fatalf("revocation of %s at revision %d before the ban's event", id, msg.GetRevision())
				}
				seen[id] = true
				revs[msg.GetRevision()] = true
			default:
				t.Fatalf("unexpected event %v", ev)
			}
		}
	}
	if f.oneChange && (len(revs) != 1 || !revs[banRev]) {
		t.Errorf("the ban and its revocations came in revisions %v and %d, want one change", revs, banRev)
	}

	list, err := f.bans.ListBans(as(f.admin), &pb.ListBansRequest{TenantId: ban.GetTenantId(), State: pb.BanState_BAN_STATE_ACTIVE})
	if err != nil || len(list.GetBans()) != 1 || list.GetBans()[0].GetBanId() != banID {
		t.Fatalf("ListBans: %v, %v; want ban %s", list.GetBans(), err, banID)
	}
	live, err := f.sessions.ListSessions(as(f.admin), &pb.ListSessionsRequest{TenantId: ban.GetTenantId(), PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(live.GetSessions()) != len(bystanders) {
		t.Errorf("%d live sessions after the ban, want the %d it does not match", len(live.GetSessions()), len(bystanders))
	}
	for _, s := range live.GetSessions() {
		if want[s.GetSessionId()] {
			t.Errorf("session %s is still live", s.GetSessionId())
		}
	}

	// Every revoked session's refresh is refused; the others still work.
	errs := make([]error, len(victims))
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < len(victims); i += 16 {
				_, errs[i] = f.sessions.RefreshSession(context.Background(), &pb.RefreshSessionRequest{RefreshToken: victims[i].GetRefreshToken(), ClientIp: "192.0.2.9"})
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		wantStatus(t, err, codes.Unauthenticated, "SESSION_REVOKED")
	}
	for _, b := range bystanders {
		if _, err := f.sessions.RefreshSession(context.Background(), &pb.RefreshSessionRequest{RefreshToken: b.GetRefreshToken(), ClientIp: "192.0.2.9"}); err != nil {
			t.Errorf("refresh of a session the ban does not match: %v", err)
		}
	}

	// The audit trail accounts for every revocation: in the ban's record,
	// plus one record per later batch when they were split.
	recs, _, err := f.auth.ListAuditRecords(t.Context(), authority.AuditFilter{TenantID: ban.GetTenantId()}, authority.Page{Size: 1000})
	if err != nil {
		t.Fatal(err)
	}
	total, records := 0, 0
	for _, r := range recs {
		if r.TargetID != banID {
			continue
		}
		if r.Action != "ban.create" && r.Action != "session.revoke_ban" {
			t.Errorf("audit record %s of the ban: action %q", r.ID, r.Action)
		}
		n, err := strconv.Atoi(r.Details["revoked_sessions"])
		if err != nil {
			t.Errorf("audit record %s: revoked_sessions %q", r.ID, r.Details["revoked_sessions"])
		}
		total += n
		records++
	}
	if total != len(victims) || (f.oneChange && records != 1) {
		t.Errorf("audit records of the ban: %d, counting %d revocations; want %d revocations", records, total, len(victims))
	}
}

// boundedStore is a store whose Updates take at most maxOps writes (each
// record written and each event counts one), as etcd's --max-txn-ops
// bounds a transaction: a larger one fails with storage.ErrTxnTooLarge and
// writes nothing. Once failAt Updates have committed, every further one
// fails with storage.ErrClosed, as a store lost in the middle of a split
// ban would.
type boundedStore struct {
	storage.Store
	maxOps  int
	commits atomic.Int64
	failAt  atomic.Int64 // 0: never
}

func (s *boundedStore) Update(ctx context.Context, fn func(storage.Tx) error) (int64, error) {
	if at := s.failAt.Load(); at > 0 && s.commits.Load() >= at {
		return 0, fmt.Errorf("bounded store: %w", storage.ErrClosed)
	}
	rev, err := s.Store.Update(ctx, func(tx storage.Tx) error {
		c := &countingWrites{Tx: tx}
		if err := fn(c); err != nil {
			return err
		}
		if c.ops > s.maxOps {
			return fmt.Errorf("bounded store: %d writes, more than %d: %w", c.ops, s.maxOps, storage.ErrTxnTooLarge)
		}
		return nil
	})
	if err == nil {
		s.commits.Add(1)
	}
	return rev, err
}

type countingWrites struct {
	storage.Tx
	ops int
}

func (t *countingWrites) PutSession(v storage.Session) error { t.ops++; return t.Tx.PutSession(v) }
func (t *countingWrites) PutRefreshToken(v storage.RefreshToken) error {
	t.ops++
	return t.Tx.PutRefreshToken(v)
}
func (t *countingWrites) PutBan(v storage.Ban) error { t.ops++; return t.Tx.PutBan(v) }
func (t *countingWrites) AppendAudit(v storage.AuditRecord) error {
	t.ops++
	return t.Tx.AppendAudit(v)
}
func (t *countingWrites) Emit(v storage.Event) error { t.ops++; return t.Tx.Emit(v) }

// TestBanSplitBatches drives the split path against a bound far below the
// batch size (the batches halve until they fit), and a store failing part
// way, which leaves the ban in force and tells the caller so.
func TestBanSplitBatches(t *testing.T) {
	bounded := &boundedStore{maxOps: 30}
	e := newEnv(t, envOptions{wrap: func(s storage.Store) storage.Store { bounded.Store = s; return bounded }})
	f := banFixture{auth: e.auth, sessions: e.sessions, bans: e.bans, events: e.events, admin: e.adminKey}
	logins := func(tenant, user string, n int) []*pb.CreateSessionRequest {
		reqs := make([]*pb.CreateSessionRequest, n)
		for i := range reqs {
			reqs[i] = &pb.CreateSessionRequest{TenantId: tenant, UserId: user}
		}
		return reqs
	}
	live := func(t *testing.T, tenant, user string) int {
		t.Helper()
		resp, err := e.sessions.ListSessions(e.admin(), &pb.ListSessionsRequest{TenantId: tenant, UserId: user, PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.GetSessions())
	}

	t.Run("Halving", func(t *testing.T) {
		f.banMany(t, &pb.CreateBanRequest{TenantId: "t1", Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "mallory"}}},
			logins("t1", "mallory", 100), logins("t1", "bob", 3))

		// RevokeUserSessions splits the same way, one audit record a batch.
		f.login(t, logins("t1", "carol", 70))
		resp, err := e.sessions.RevokeUserSessions(e.admin(), &pb.RevokeUserSessionsRequest{TenantId: "t1", UserId: "carol"})
		if err != nil || resp.GetRevokedSessions() != 70 {
			t.Fatalf("RevokeUserSessions of 70 sessions: %v, %v", resp, err)
		}
		if n := live(t, "t1", "carol"); n != 0 {
			t.Fatalf("%d sessions still live", n)
		}
		recs, _, err := e.auth.ListAuditRecords(t.Context(), authority.AuditFilter{TenantID: "t1", Action: "session.revoke_user"}, authority.Page{Size: 1000})
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, r := range recs {
			n, _ := strconv.Atoi(r.Details["revoked_sessions"])
			total += n
		}
		if total != 70 || len(recs) < 2 {
			t.Fatalf("%d session.revoke_user records counting %d revocations, want several counting 70", len(recs), total)
		}
	})

	t.Run("FailurePartWay", func(t *testing.T) {
		f.login(t, logins("t3", "eve", 100))
		// The ban's Update and one batch commit; the next batch fails.
		bounded.failAt.Store(bounded.commits.Load() + 2)
		_, err := e.bans.CreateBan(e.admin(), &pb.CreateBanRequest{TenantId: "t3", Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "eve"}}})
		info := wantStatus(t, err, codes.Unavailable, "UNAVAILABLE")
		banID := info.GetMetadata()["ban_id"]
		revoked, _ := strconv.Atoi(info.GetMetadata()["revoked_sessions"])
		if banID == "" || revoked == 0 || !strings.Contains(err.Error(), banID) {
			t.Fatalf("status of the incomplete ban: %v, metadata %v", err, info.GetMetadata())
		}
		bounded.failAt.Store(0)

		// The ban is in force, exactly the sessions reported are revoked,
		// and RevokeUserSessions revokes the rest.
		if _, err := e.bans.GetBan(e.admin(), &pb.GetBanRequest{BanId: banID}); err != nil {
			t.Fatalf("GetBan of the incomplete ban: %v", err)
		}
		_, err = e.sessions.CreateSession(e.admin(), &pb.CreateSessionRequest{TenantId: "t3", UserId: "eve"})
		wantStatus(t, err, codes.PermissionDenied, "USER_BANNED")
		if n := live(t, "t3", "eve"); n != 100-revoked {
			t.Fatalf("%d sessions live after %d were revoked, want %d", n, revoked, 100-revoked)
		}
		resp, err := e.sessions.RevokeUserSessions(e.admin(), &pb.RevokeUserSessionsRequest{TenantId: "t3", UserId: "eve"})
		if err != nil || int(resp.GetRevokedSessions()) != 100-revoked {
			t.Fatalf("RevokeUserSessions after the incomplete ban: %v, %v; want %d revoked", resp, err, 100-revoked)
		}
		if n := live(t, "t3", "eve"); n != 0 {
			t.Fatalf("%d sessions still live", n)
		}
	})
}
