package client_test

import (
	"maps"
	"runtime"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-dev/portcullis/client"
	"github.com/portcullis-dev/portcullis/client/mirrormetrics"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// TestCheckCountsConcurrent: checks from many goroutines at once (one hot
// token, a banned one, garbage) are all counted, whichever per-P shard
// each landed on; Stats and the collector sum the shards.
func TestCheckCountsConcurrent(t *testing.T) {
	e := newEnv(t, envOptions{})
	m := newMirror(t, e, client.MirrorOptions{})
	alice := e.login(&pb.CreateSessionRequest{UserId: "alice"}).GetAccessToken()
	bob := e.login(&pb.CreateSessionRequest{UserId: "bob"}).GetAccessToken()
	e.ban(&pb.CreateBanRequest{Subject: userSubject("bob")})
	m.catchUp(e)

	// More goroutines than Ps, each yielding now and then, so that checks
	// run on every P and goroutines move between them.
	goroutines := 4 * runtime.GOMAXPROCS(0)
	const perGoroutine = 300
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perGoroutine {
				tok := alice
				switch {
				case i%10 == 0:
					tok = bob
				case i%30 == 1:
					tok = "not.a.token"
				}
				_, _ = m.Check(t.Context(), tok, client.CheckInput{}) // counted, not judged
				if (i+g)%50 == 0 {
					runtime.Gosched()
				}
			}
		})
	}
	wg.Wait()

	n := uint64(goroutines)
	want := map[string]uint64{"allowed": n * (perGoroutine - perGoroutine/10 - perGoroutine/30),
		"banned": n * perGoroutine / 10, "token_invalid": n * perGoroutine / 30,
		"stale": 0, "token_expired": 0, "session_revoked": 0, "capability_restricted": 0}
	if got := m.Stats().Checks; !maps.Equal(got, want) {
		t.Fatalf("Stats().Checks = %v, want %v", got, want)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(mirrormetrics.NewCollector(m.Mirror))
	got := gather(t, reg)
	for r, n := range want {
		name := `portcullis_mirror_checks_total{result="` + r + `"}`
		if v, ok := got[name]; !ok || v != float64(n) {
			t.Errorf("%s = %v (present %v), want %d", name, v, ok, n)
		}
	}
}
