package receiver_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/receiver"
	"github.com/portcullis-dev/portcullis/ssf"
)

// chained signs SETs whose portcullis_prev_jti chain them in the order
// given, as a transmitter keeping several in flight sends them.
func (e *env) chained(sets ...ssf.SET) map[string]string {
	out := map[string]string{}
	prev := ""
	for _, s := range sets {
		s.PrevJTI = prev
		out[s.JTI] = e.tx.Sign(s)
		prev = s.JTI
	}
	return out
}

// pushAll pushes the tokens at once and returns each answer's status by
// jti.
func (e *env) pushAll(tokens map[string]string) map[string]int {
	e.t.Helper()
	var mu sync.Mutex
	codes := map[string]int{}
	var wg sync.WaitGroup
	for jti, tok := range tokens {
		wg.Go(func() {
			code, body, err := e.tx.Push(e.ctx, tok, "")
			if err != nil {
				e.t.Errorf("push %s: %v", jti, err)
			}
			if code != http.StatusAccepted {
				e.t.Logf("push %s: %d %v", jti, code, body)
			}
			mu.Lock()
			codes[jti] = code
			mu.Unlock()
		})
	}
	wg.Wait()
	return codes
}

// TestPushChainApplied: the receiver asks a push transmitter for a window
// of SETs in flight; SETs chained by portcullis_prev_jti and pushed all at
// once, in any order, are applied in the chain's order. A ban, its lift
// and a second ban of the same user end with one lifted ban and one
// active; in another order they would not.
func TestPushChainApplied(t *testing.T) {
	e := newEnv(t, "push")
	if got := e.tx.Stream().Delivery.MaxInFlight; got != receiver.DefaultPushInFlight {
		t.Fatalf("portcullis_max_in_flight asked: %d, want %d", got, receiver.DefaultPushInFlight)
	}
	now := e.a.Clock().Now()
	for round := range 5 {
		u := "chain-" + string(rune('a'+round))
		j := func(n string) string { return u + "-" + n }
		codes := e.pushAll(e.chained(
			e.tx.SET(aud, j("1"), now, user(u), ssf.EventAccountDisabled, ssf.AccountDisabled{}),
			e.tx.SET(aud, j("2"), now, user(u), ssf.EventAccountEnabled, ssf.AccountEnabled{}),
			e.tx.SET(aud, j("3"), now, user(u), ssf.EventCredentialCompromise, map[string]any{}),
		))
		for jti, code := range codes {
			if code != http.StatusAccepted {
				t.Fatalf("%s: %d", jti, code)
			}
		}
		if a, l := e.bans(u, pb.BanState_BAN_STATE_ACTIVE), e.bans(u, pb.BanState_BAN_STATE_LIFTED); len(a) != 1 || len(l) != 1 {
			t.Fatalf("%s: %d active and %d lifted bans, want 1 and 1 (ban, lift, ban in order)", u, len(a), len(l))
		}
	}
}

// TestPushChainRefusalInRun: a SET refused for itself inside a run (a user
// ID the authority does not take) is answered 400 alone; the SETs before
// and after it in the chain are applied.
func TestPushChainRefusalInRun(t *testing.T) {
	e := newEnv(t, "push")
	now := e.a.Clock().Now()
	codes := e.pushAll(e.chained(
		e.tx.SET(aud, "r-1", now, user("kim"), ssf.EventAccountDisabled, ssf.AccountDisabled{}),
		e.tx.SET(aud, "r-2", now, user(strings.Repeat("x", 300)), ssf.EventAccountDisabled, ssf.AccountDisabled{}),
		e.tx.SET(aud, "r-3", now, user("lee"), ssf.EventAccountDisabled, ssf.AccountDisabled{}),
	))
	if codes["r-1"] != http.StatusAccepted || codes["r-2"] != http.StatusBadRequest || codes["r-3"] != http.StatusAccepted {
		t.Fatalf("answers %v, want r-2 refused (400) and the others taken (202)", codes)
	}
	for _, u := range []string{"kim", "lee"} {
		if a := e.bans(u, pb.BanState_BAN_STATE_ACTIVE); len(a) != 1 {
			t.Fatalf("%s: %d active bans, want 1", u, len(a))
		}
	}
}
