package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// `portcullis ban --wait` reports how many mirrors enforce the ban.
func TestCLIBanWait(t *testing.T) {
	e := newCLIEnv(t)
	var mirrors []*client.Mirror
	for _, name := range []string{"a", "b", "c"} {
		m := client.NewMirror(e.client(), client.MirrorOptions{Identity: client.MirrorIdentity{Service: "web", InstanceID: name}})
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan struct{})
		go func() { defer close(ran); m.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-ran })
		wctx, wcancel := context.WithTimeout(context.Background(), time.Minute)
		if err := m.WaitSynced(wctx); err != nil {
			t.Fatal(err)
		}
		wcancel()
		mirrors = append(mirrors, m)
	}
	out := e.ok("ban", "--user", "u1", "--wait", "10s")
	if !strings.Contains(out, "enforced by 3/3 mirrors in ") {
		t.Fatalf("ban --wait printed %q, want enforced by 3/3 mirrors", out)
	}
	id := banIDRe.FindString(out)
	out = e.ok("unban", id, "--wait", "10s")
	if !strings.Contains(out, "enforced by 3/3 mirrors in ") {
		t.Fatalf("unban --wait printed %q", out)
	}
	e.login("u3")
	out = e.ok("revoke", "--user", "u3", "--wait", "10s")
	if !strings.Contains(out, "revoked 1 session of user u3") || !strings.Contains(out, "enforced by 3/3 mirrors in ") {
		t.Fatalf("revoke --user --wait printed %q", out)
	}
	if code, _, errs := e.run("ban", "--user", "u2", "--wait", "2m"); code == exitOK || !strings.Contains(errs, "--wait") {
		t.Fatalf("ban --wait 2m: exit %d, stderr %q; want a usage error", code, errs)
	}
}

func TestEnforcementLineNamesLaggards(t *testing.T) {
	e := &pb.Enforcement{Confirmed: 36, Total: 37, Elapsed: durationpb.New(2 * time.Second), Laggards: []*pb.Subscriber{{
		Identity:        &pb.MirrorIdentity{Service: "checkout", InstanceId: "pod-7", Version: "v1.4.2"},
		AppliedRevision: 812, Lag: 3, PeerAddress: "10.0.3.7:51234",
	}}}
	want := "enforced by 36/37 mirrors in 2.0 s; not yet applied by: checkout/pod-7@v1.4.2 (revision 812, lag 3, 10.0.3.7:51234)"
	if got := enforcementLine(e); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	e = &pb.Enforcement{Confirmed: 37, Total: 37, Elapsed: durationpb.New(4 * time.Millisecond)}
	if got := enforcementLine(e); got != "enforced by 37/37 mirrors in 4 ms" {
		t.Errorf("got %q", got)
	}
	e = &pb.Enforcement{Confirmed: 8, Total: 10, Elapsed: durationpb.New(2 * time.Second), Replicas: []*pb.ReplicaProgress{
		{ReplicaId: "replica_a", Confirmed: 4, Total: 4},
		{ReplicaId: "replica_b", Confirmed: 1, Total: 2},
		{ReplicaId: "replica_c", Confirmed: 0, Total: 1, Gone: true},
	}}
	want = "enforced by 8/10 mirrors of 4 replicas in 2.0 s; replica replica_b: 1/2; replica replica_c went away at 0/1"
	if got := enforcementLine(e); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
