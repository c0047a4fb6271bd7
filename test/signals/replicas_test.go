package signals_test

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/authoritytest/embedetcd"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// TestSignalsReplicasPushOnce: A is two replicas over one etcd prefix and
// B follows A by push. Only the replica holding the stream's push lease
// delivers it, so B receives each SET once, not once per replica. When
// that replica stops (SIGTERM), the other takes the stream over, and B
// holds every ban A made, once each, in A's order.
func TestSignalsReplicasPushOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("three authorities: -short")
	}
	endpoints := embedetcd.Start(t)
	store := []string{"--store", "etcd://" + strings.TrimPrefix(endpoints[0], "http://"), "--etcd-prefix", "/" + t.Name()}
	a1 := startNode(t, "a1", store...)
	a2 := startReplica(t, a1, "a2", store...)
	b := startNode(t, "b")
	tx := b.follow(a1, "push", "t1")
	user := func(i int) string { return fmt.Sprintf("r%03d", i) }
	const n = 100
	banUpTo := func(a *node, from, to int) {
		for i := from; i < to; i++ {
			banRetrying(t, a, user(i))
		}
		waitFor(t, "B applies the last ban", func() error {
			resp, err := b.admin.Bans.CheckBan(ctx(t), &pb.CheckBanRequest{TenantId: "t1", UserId: user(to - 1)})
			if err == nil && !resp.GetBanned() {
				err = fmt.Errorf("%s not banned at B yet", user(to-1))
			}
			return err
		})
	}

	banUpTo(a1, 0, n/2)
	holder, standby := a1, a2
	if metric(t, a2, "portcullis_ssf_push_lease") == 1 {
		holder, standby = a2, a1
	}
	if metric(t, holder, "portcullis_ssf_push_lease") != 1 || metric(t, standby, "portcullis_ssf_push_lease") != 0 {
		t.Fatalf("push lease: %s %v, %s %v; want exactly one holder", holder.name, metric(t, holder, "portcullis_ssf_push_lease"),
			standby.name, metric(t, standby, "portcullis_ssf_push_lease"))
	}
	if d := metric(t, b, "portcullis_signals_duplicates_total"); d != 0 {
		t.Fatalf("B received %v SETs twice with both replicas of A running", d)
	}

	holder.proc.Stop()
	banUpTo(standby, n/2, n)
	if metric(t, standby, "portcullis_ssf_push_lease") != 1 {
		t.Fatalf("%s did not take the stream over", standby.name)
	}
	bansInOrder(t, b, tx, n, user)
}

// metric is the sum of the samples of name on n's /metrics.
func metric(t testing.TB, n *node, name string) float64 {
	t.Helper()
	resp, err := http.Get(n.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", name, line, err)
		}
		sum += v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sum
}
