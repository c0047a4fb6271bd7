package console_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/authoritytest/embedetcd"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/server"
)

// TestEnforcementCountsTheOtherReplicasMirrors: two replicas over one
// etcd store, one mirror on replica A and two on replica B. A ban created
// in A's console reaches "enforced by 3/3 mirrors": A counts B's mirrors
// by the summary B publishes, not only its own (which would stop at 1/1).
func TestEnforcementCountsTheOtherReplicasMirrors(t *testing.T) {
	rs := authoritytest.StartReplicas(t, 2, authoritytest.Options{EtcdEndpoints: embedetcd.Start(t)})
	srv := httptest.NewServer(rs[0].HTTPHandler(server.WithConsole(false)))
	t.Cleanup(srv.Close)
	// A hang guard, not a timing requirement.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var mirrors []*client.Mirror
	for i, r := range []*authoritytest.Authority{rs[0], rs[1], rs[1]} {
		m, stop, err := client.StartMirror(ctx, r.Dial(), client.MirrorOptions{Clock: r.Clock().Now,
			Identity: client.MirrorIdentity{Service: "api", InstanceID: fmt.Sprintf("api-%d", i+1)}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
		mirrors = append(mirrors, m)
	}

	sess, err := rs[1].Dial().Sessions.CreateSession(ctx, &pb.CreateSessionRequest{TenantId: "t1", UserId: "mallory"})
	if err != nil {
		t.Fatal(err)
	}

	c := browser(t)
	signIn(t, c, srv.URL, rs[0].AdminKey)
	_, page := get(t, c, srv.URL+"/console/bans")
	resp, _ := post(t, c, srv.URL+"/console/bans", url.Values{"csrf": {csrf(t, page)}, "tenant": {"t1"}, "kind": {"user"},
		"value": {"mallory"}, "duration": {"2h"}, "reason": {"spam wave"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %s", resp.Status)
	}

	// The console re-reads the fleet on each request: poll the listing
	// until every mirror of both replicas is counted.
	var list string
	for !strings.Contains(list, "enforced by 3/3 mirrors") {
		if ctx.Err() != nil {
			t.Fatalf("the ban shows %q, never enforced by 3/3 mirrors (one on this replica, two on the other)",
				regexp.MustCompile(`enforced by \d+/\d+ mirrors`).FindString(list))
		}
		time.Sleep(10 * time.Millisecond) // between polls; the loop waits on the text
		_, list = get(t, c, srv.URL+"/console/bans?state=active")
	}
	// Each mirror, whichever replica it follows, enforces the ban.
	for i, m := range mirrors {
		if _, err := m.Check(ctx, sess.GetAccessToken(), client.CheckInput{}); !errors.Is(err, client.ErrUserBanned) {
			t.Errorf("mirror %d: Check of the banned user's token: %v, want ErrUserBanned", i+1, err)
		}
	}
}
