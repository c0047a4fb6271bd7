package signals_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/authoritytest/embedetcd"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// burst is how many bans A makes while B follows it.
const burst = 1000

// TestSignalsSurviveTransmitterRestart: A bans 1,000 users, one after
// the other, and is killed (SIGKILL, nothing flushed) and restarted in the
// middle, while its deliveries to B are still under way. B applies every
// ban exactly once (a SET redelivered after the restart is dropped by its
// jti) and in A's order, by push and by poll.
func TestSignalsSurviveTransmitterRestart(t *testing.T) {
	burstAcrossRestart(t, burst, startNode, func(a, _ *node) { a.restart() })
}

// TestSignalsSurviveReceiverRestart: the same, B killed and restarted in
// the middle: the SETs B held for their predecessors, and those in flight
// to it, are sent again, and B applies every ban exactly once, in A's
// order.
func TestSignalsSurviveReceiverRestart(t *testing.T) {
	burstAcrossRestart(t, burst, startNode, func(_, b *node) { b.restart() })
}

// TestSignalsOverEtcd: the same (250 bans) with both authorities over
// etcd (one cluster, a prefix each), B restarted half way: the transmitter follows
// and writes its Position in etcd, and the receiver commits its runs of
// SETs in etcd's bounded transactions.
func TestSignalsOverEtcd(t *testing.T) {
	endpoints := embedetcd.Start(t)
	store := "etcd://" + strings.TrimPrefix(endpoints[0], "http://")
	onEtcd := func(t testing.TB, name string, extra ...string) *node {
		return startNode(t, name, append([]string{"--store", store, "--etcd-prefix", "/" + t.Name() + "/" + name}, extra...)...)
	}
	burstAcrossRestart(t, burst/4, onEtcd, func(_, b *node) { b.restart() })
}

// burstAcrossRestart starts A and B with start, bans n users on A, one
// after the other, calls restart half way, and checks B's bans: each user
// once, in A's order.
func burstAcrossRestart(t *testing.T, n int, start func(testing.TB, string, ...string) *node, restart func(a, b *node)) {
	if testing.Short() {
		t.Skip("two authorities and 1,000 bans each way: -short")
	}
	for _, delivery := range []string{"push", "poll"} {
		t.Run(delivery, func(t *testing.T) {
			a, b := start(t, "a"), start(t, "b")
			tx := b.follow(a, delivery, "t1")
			user := func(i int) string { return fmt.Sprintf("u%04d", i) }
			for i := range n {
				if i == n/2 {
					restart(a, b)
				}
				banRetrying(t, a, user(i))
			}
			last := user(n - 1)
			waitFor(t, "B applies the last ban", func() error {
				resp, err := b.admin.Bans.CheckBan(ctx(t), &pb.CheckBanRequest{TenantId: "t1", UserId: last})
				if err != nil {
					return err
				}
				if !resp.GetBanned() {
					return fmt.Errorf("%s not banned at B yet", last)
				}
				return nil
			})

			bansInOrder(t, b, tx, n, user)
		})
	}
}

// bansInOrder checks that B's bans are exactly once, in order: those of
// user(0) to user(n-1), each once, all by its receiver of tx.
func bansInOrder(t *testing.T, b *node, tx *pb.Transmitter, n int, user func(int) string) {
	t.Helper()
	var got []string
	for _, ban := range allBans(t, b, "t1") {
		if !strings.Contains(ban.GetCreatedBy(), tx.GetTransmitterId()) {
			t.Fatalf("ban %s at B created by %q, not by the receiver of %s", ban.GetBanId(), ban.GetCreatedBy(), tx.GetTransmitterId())
		}
		got = append(got, ban.GetSubject().GetUserId())
	}
	if len(got) != n {
		t.Fatalf("B made %d bans for A's %d (duplicates or losses)", len(got), n)
	}
	for i, u := range got {
		if u != user(i) {
			t.Fatalf("B's ban #%d is of %s, want %s: out of A's order", i, u, user(i))
		}
	}
}

// banRetrying bans user on A, retrying while A restarts (a ban that was
// not acknowledged is retried; the test kills A only between bans, so no
// acknowledged ban is repeated).
func banRetrying(t *testing.T, a *node, user string) {
	t.Helper()
	req := &pb.CreateBanRequest{TenantId: "t1", Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: user}}, Reason: "burst"}
	waitFor(t, "ban "+user+" on A", func() error {
		_, err := a.admin.Bans.CreateBan(ctx(t), req)
		if err != nil && !errors.Is(err, client.ErrUnavailable) {
			t.Fatalf("ban %s: %v", user, err)
		}
		return err
	})
}
