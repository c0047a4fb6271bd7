package signals_test

import (
	"fmt"
	"testing"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// activeBansBy counts n's active bans of user in tenant made by actor
// ("" = anyone).
func activeBansBy(t testing.TB, n *node, tenant, user, actor string) int {
	t.Helper()
	c := 0
	for _, b := range bansOf(t, n, tenant, user) {
		if b.GetState() == pb.BanState_BAN_STATE_ACTIVE && (actor == "" || b.GetCreatedBy() == actor) {
			c++
		}
	}
	return c
}

// hasBan is a condition: n has an active ban of user by actor.
func hasBan(t testing.TB, n *node, tenant, user, actor string) func() error {
	return func() error {
		if activeBansBy(t, n, tenant, user, actor) == 0 {
			return fmt.Errorf("no active ban of %s by %s", user, actor)
		}
		return nil
	}
}

// TestSignalsMutual: A and B receive from each other. A ban at A comes
// back to A as B's ban (a ban of the same user by the signal's actor), and
// the echo of that at B finds B's ban in force and bans nothing: the loop
// stops. The proof it stopped: a later ban at A (of zed) reaches B and
// comes back to A after the echoes (delivery is in order), and by then
// each side has exactly the bans of alice it had after the first round.
func TestSignalsMutual(t *testing.T) {
	a, b := startNode(t, "a"), startNode(t, "b")
	fromA := "ssf:" + b.follow(a, "push", "t1").GetTransmitterId() // the actor of the bans A's signals make at B
	fromB := "ssf:" + a.follow(b, "push", "t1").GetTransmitterId()
	a.ban("t1", "alice", "fraud ring")
	waitFor(t, "alice's ban at B", hasBan(t, b, "t1", "alice", fromA))
	waitFor(t, "alice's ban coming back to A", hasBan(t, a, "t1", "alice", fromB))
	a.ban("t1", "zed", "fraud ring")
	waitFor(t, "zed's ban at B", hasBan(t, b, "t1", "zed", fromA))
	waitFor(t, "zed's ban coming back to A", hasBan(t, a, "t1", "zed", fromB))
	if n := activeBansBy(t, a, "t1", "alice", ""); n != 2 {
		t.Errorf("A: %d active bans of alice, want 2 (the operator's and B's echo): %v", n, bansOf(t, a, "t1", "alice"))
	}
	if n := activeBansBy(t, b, "t1", "alice", ""); n != 1 {
		t.Errorf("B: %d active bans of alice, want 1: %v", n, bansOf(t, b, "t1", "alice"))
	}
}

// TestSignalsSessionFallback: B follows A without trusting A's tokens, so
// it cannot name A's session: a revocation of bob's session at A revokes
// bob's sessions at B (and nobody else's).
func TestSignalsSessionFallback(t *testing.T) {
	a, b := startNode(t, "a"), startNode(t, "b")
	b.follow(a, "poll", "t1")
	bobB, carolB, bobA := b.session("t1", "bob"), b.session("t1", "carol"), a.session("t1", "bob")
	if _, err := a.admin.Sessions.RevokeSession(ctx(t), &pb.RevokeSessionRequest{SessionId: bobA.GetSession().GetSessionId()}); err != nil {
		t.Fatal(err)
	}
	revoked := func(id string) (bool, error) {
		s, err := b.admin.Sessions.GetSession(ctx(t), &pb.GetSessionRequest{SessionId: id})
		return s.GetSession().GetRevokeTime() != nil, err
	}
	waitFor(t, "bob's session at B revoked", func() error {
		if ok, err := revoked(bobB.GetSession().GetSessionId()); err != nil || !ok {
			return fmt.Errorf("not revoked (%v)", err)
		}
		return nil
	})
	if ok, err := revoked(carolB.GetSession().GetSessionId()); err != nil || ok {
		t.Fatalf("carol's session at B: revoked %v (%v)", ok, err)
	}
}
