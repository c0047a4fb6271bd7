package receiver_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis-dev/portcullis/authoritytest"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/receiver"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd/etcdtest"
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
	for round := range 5 {
		e.banLiftBan(fmt.Sprint("chain-", round))
	}
}

// TestPushChainEtcd: on etcd, whose transactions are bounded
// (--max-txn-ops), a run of SETs too large for one transaction is applied
// in smaller ones, still in the chain's order.
func TestPushChainEtcd(t *testing.T) {
	// --max-txn-ops 40: a run of more than about five bans is too large.
	cluster := etcdtest.Start(t, etcdtest.Config{UnsafeNoFsync: true, MaxTxnOps: 40})
	e := newEnv(t, "push", func(o *authoritytest.Options) { o.EtcdEndpoints, o.EtcdMaxTxnOps = etcdtest.Endpoints(cluster), 40 })
	var users []string
	for i := range 40 {
		users = append(users, fmt.Sprint("etcd-", i))
	}
	e.banLiftBan(users...)

	// A ban of a user with more sessions than one transaction revokes:
	// applied alone, its revocations split over several.
	var tokens []string
	for range 150 {
		_, tok := e.session("many")
		tokens = append(tokens, tok)
	}
	e.mustApply(e.signed("many-1", ssf.EventAccountDisabled, user("many"), ssf.AccountDisabled{}))
	if a := e.bans("many", pb.BanState_BAN_STATE_ACTIVE); len(a) != 1 {
		t.Fatalf("many: %d active bans, want 1", len(a))
	}
	for _, tok := range tokens {
		if err := e.check(tok); err == nil {
			t.Fatal("a session of the banned user is still admitted")
		}
	}
	revoked := 0
	for _, rec := range e.applyAudits() {
		if rec.GetDetails()["jti"] == "many-1" {
			revoked++
		}
	}
	if revoked != 1 {
		t.Fatalf("%d signal.apply records of many-1, want 1", revoked)
	}
}

// banLiftBan pushes, at once, a chain that bans, lifts and bans again each
// user, and checks that each ends with one lifted ban and one active: in
// another order they would not.
func (e *env) banLiftBan(users ...string) {
	e.t.Helper()
	now := e.a.Clock().Now()
	var sets []ssf.SET
	for _, u := range users {
		sets = append(sets,
			e.tx.SET(aud, u+"-1", now, user(u), ssf.EventAccountDisabled, ssf.AccountDisabled{}),
			e.tx.SET(aud, u+"-2", now, user(u), ssf.EventAccountEnabled, ssf.AccountEnabled{}),
			e.tx.SET(aud, u+"-3", now, user(u), ssf.EventCredentialCompromise, map[string]any{}))
	}
	for jti, code := range e.pushAll(e.chained(sets...)) {
		if code != http.StatusAccepted {
			e.t.Fatalf("%s: %d", jti, code)
		}
	}
	for _, u := range users {
		if a, l := e.bans(u, pb.BanState_BAN_STATE_ACTIVE), e.bans(u, pb.BanState_BAN_STATE_LIFTED); len(a) != 1 || len(l) != 1 {
			e.t.Fatalf("%s: %d active and %d lifted bans, want 1 and 1 (ban, lift, ban in order)", u, len(a), len(l))
		}
	}
}

// TestPushChainRefusalInRun: a SET refused for itself inside a run (a user
// ID the authority does not take, a subject the receiver cannot map) is
// answered 400 alone; the SETs before and after it in the chain are
// applied.
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
	// Refused before any write (a subject this receiver cannot map), it
	// still takes its place in the chain: the SET after it does not wait
	// for it (which would be a 503 after the hold time).
	codes = e.pushAll(e.chained(
		e.tx.SET(aud, "r-4", now, user("max"), ssf.EventAccountDisabled, ssf.AccountDisabled{}),
		e.tx.SET(aud, "r-5", now, &ssf.Subject{Format: ssf.FormatPhoneNumber, PhoneNumber: "+12065550100"}, ssf.EventAccountDisabled, ssf.AccountDisabled{}),
		e.tx.SET(aud, "r-6", now, user("ned"), ssf.EventAccountDisabled, ssf.AccountDisabled{}),
	))
	if codes["r-4"] != http.StatusAccepted || codes["r-5"] != http.StatusBadRequest || codes["r-6"] != http.StatusAccepted {
		t.Fatalf("answers %v, want r-5 refused (400) and the others taken (202)", codes)
	}
	for _, u := range []string{"kim", "lee", "max", "ned"} {
		if a := e.bans(u, pb.BanState_BAN_STATE_ACTIVE); len(a) != 1 {
			t.Fatalf("%s: %d active bans, want 1", u, len(a))
		}
	}
}
