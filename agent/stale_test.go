package agent_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/agent"
	"github.com/portcullis-dev/portcullis/client"
)

// readyz returns /readyz's status.
func (e *env) readyz(t testing.TB) int {
	t.Helper()
	resp, err := http.Get(e.srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAuthorityGoesAway: with the authority down, decisions go on from
// the mirror until the staleness bound (on the clock the test moves), then
// fail closed with 503 MIRROR_STALE and /readyz turns not ready; once the
// authority is back, the mirror resumes and the agent recovers without a
// restart. Fail-open keeps deciding from what the mirror has, while
// /readyz still says it is stale.
func TestAuthorityGoesAway(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		name := map[bool]string{false: "fail closed", true: "fail open"}[failOpen]
		t.Run(name, func(t *testing.T) {
			const bound = 30 * time.Second
			e := startEnv(t, testConfig, client.MirrorOptions{StaleAfter: bound, FailOpen: failOpen,
				MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}, agent.Options{})
			alice := e.login(t, "alice", "")
			wantAllowed(t, e.authz(t, "GET", "/api/posts", alice, nil), "alice")
			if got := e.readyz(t); got != http.StatusOK {
				t.Fatalf("/readyz %d before", got)
			}

			e.Stop()
			e.Clock().Advance(bound - time.Second)
			wantAllowed(t, e.authz(t, "GET", "/api/posts", alice, nil), "alice")
			if got := e.readyz(t); got != http.StatusOK {
				t.Fatalf("/readyz %d within the bound", got)
			}

			e.Clock().Advance(2 * time.Second)
			if failOpen {
				wantAllowed(t, e.authz(t, "GET", "/api/posts", alice, nil), "alice")
			} else {
				wantRefused(t, e.authz(t, "GET", "/api/posts", alice, nil), http.StatusServiceUnavailable, "MIRROR_STALE")
			}
			wantAllowed(t, e.authz(t, "GET", "/public/a", "", nil), "") // public routes need no mirror
			if got := e.readyz(t); got != http.StatusServiceUnavailable {
				t.Fatalf("/readyz %d past the bound, want 503", got)
			}

			e.Restart()
			deadline := time.Now().Add(time.Minute)
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for e.readyz(t) != http.StatusOK {
				if time.Now().After(deadline) {
					t.Fatal("the agent did not recover within a minute of the authority's return")
				}
				<-tick.C
			}
			wantAllowed(t, e.authz(t, "GET", "/api/posts", alice, nil), "alice")
			// And it follows the authority again.
			e.ban(t, userBan("alice"))
			wantRefused(t, e.authz(t, "GET", "/api/posts", alice, nil), http.StatusForbidden, "USER_BANNED")
		})
	}
}
