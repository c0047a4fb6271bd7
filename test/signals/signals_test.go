package signals_test

import (
	"fmt"
	"testing"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// TestSignalsBetweenAuthorities: two real authorities, A transmitting its
// Shared Signals to B's receiver, by push and by poll. B trusts A's access
// tokens (an external issuer) and has sessions of its own: a ban on A
// reaches B's mirror, a revocation on A revokes A's session at B, and a
// lift on A lifts only the ban B's receiver made, never an operator's.
func TestSignalsBetweenAuthorities(t *testing.T) {
	for _, delivery := range []string{"push", "poll"} {
		t.Run(delivery, func(t *testing.T) {
			a, b := startNode(t, "a"), startNode(t, "b")
			b.trust(a, "t1")
			b.follow(a, delivery, "t1")
			m := b.mirror()

			// alice has a session at A (an external token at B) and one
			// at B itself.
			aliceA, aliceB := a.session("t1", "alice"), b.session("t1", "alice")
			waitFor(t, "B admits A's token", admits(m, aliceA.GetAccessToken()))
			waitFor(t, "B admits its own token", admits(m, aliceB.GetAccessToken()))

			a.ban("t1", "alice", "fraud ring")
			took := waitFor(t, "B refuses alice after A's ban", refuses(m, aliceB.GetAccessToken(), client.ErrUserBanned))
			t.Logf("%s: a ban on A refused at B's mirror after %v (from A's acknowledgement)", delivery, took)
			waitFor(t, "B refuses A's token of alice", refuses(m, aliceA.GetAccessToken(), client.ErrBanned))
			bBans := bansOf(t, b, "t1", "alice")
			if len(bBans) != 1 || bBans[0].GetReason() == "" || bBans[0].GetPolicy() == "" {
				t.Fatalf("B's bans of alice: %v, want one, with a reason and a policy naming the signal", bBans)
			}

			// An operator of B bans alice too; A lifts its ban: B lifts
			// its receiver's ban, not the operator's.
			opBan := b.ban("t1", "alice", "B's own reasons")
			for _, ban := range bansOf(t, a, "t1", "alice") {
				if _, err := a.admin.Bans.LiftBan(ctx(t), &pb.LiftBanRequest{BanId: ban.GetBanId(), Reason: "appeal granted"}); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "B lifts its receiver's ban", func() error {
				got, err := b.admin.Bans.GetBan(ctx(t), &pb.GetBanRequest{BanId: bBans[0].GetBanId()})
				if err != nil {
					return err
				}
				if got.GetBan().GetLiftTime() == nil {
					return fmt.Errorf("ban %s not lifted", bBans[0].GetBanId())
				}
				return nil
			})
			if got, err := b.admin.Bans.GetBan(ctx(t), &pb.GetBanRequest{BanId: opBan.GetBanId()}); err != nil || got.GetBan().GetLiftTime() != nil {
				t.Fatalf("the operator's ban at B: %v, %v; want it still in force", got, err)
			}
			if err := refuses(m, aliceB.GetAccessToken(), client.ErrUserBanned)(); err != nil {
				t.Fatal(err)
			}

			// A revokes carol's session: B revokes it too (an external
			// session of A's issuer), and only it.
			carol, carol2 := a.session("t1", "carol"), a.session("t1", "carol")
			waitFor(t, "B admits carol", admits(m, carol.GetAccessToken()))
			if _, err := a.admin.Sessions.RevokeSession(ctx(t), &pb.RevokeSessionRequest{SessionId: carol.GetSession().GetSessionId(), Reason: "lost laptop"}); err != nil {
				t.Fatal(err)
			}
			took = waitFor(t, "B refuses carol's revoked session", refuses(m, carol.GetAccessToken(), client.ErrSessionRevoked))
			t.Logf("%s: a revocation on A refused at B's mirror after %v", delivery, took)
			if err := admits(m, carol2.GetAccessToken())(); err != nil {
				t.Fatalf("carol's other session: %v, want admitted", err)
			}
		})
	}
}

// bansOf lists n's bans of a user (every state), in creation order.
func bansOf(t testing.TB, n *node, tenant, user string) []*pb.Ban {
	t.Helper()
	var out []*pb.Ban
	for _, ban := range allBans(t, n, tenant) {
		if ban.GetSubject().GetUserId() == user {
			out = append(out, ban)
		}
	}
	return out
}

// allBans lists n's user bans of a tenant, every state, in creation order.
func allBans(t testing.TB, n *node, tenant string) []*pb.Ban {
	t.Helper()
	var out []*pb.Ban
	req := &pb.ListBansRequest{TenantId: tenant, SubjectKind: pb.SubjectKind_SUBJECT_KIND_USER, PageSize: 1000}
	for {
		resp, err := n.admin.Bans.ListBans(ctx(t), req)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resp.GetBans()...)
		if resp.GetNextPageToken() == "" {
			return out
		}
		req.PageToken = resp.GetNextPageToken()
	}
}
