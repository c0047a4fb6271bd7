package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt/bolttest"
)

// deniedLog records what a deniedAuditor writes, in place of the
// authority: a narrow unit test of the counting and of its timing.
type deniedLog struct {
	mu        sync.Mutex
	own       int
	summaries []authority.DeniedSummary
}

func (r *deniedLog) audit(context.Context, authority.Actor, string, string) {
	r.mu.Lock()
	r.own++
	r.mu.Unlock()
}

func (r *deniedLog) summarize(_ context.Context, s authority.DeniedSummary) error {
	r.mu.Lock()
	r.summaries = append(r.summaries, s)
	r.mu.Unlock()
	return nil
}

func (r *deniedLog) counts() (own, summarized, summaries int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.summaries {
		summarized += s.Calls
	}
	return r.own, summarized, len(r.summaries)
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func addr(i int) string { return fmt.Sprintf("198.51.%d.%d", i/250, i%250) }

// A flood from many addresses, under synctest's clock: at most the bound
// of individual records, summaries at most once per interval, and every
// other call counted exactly once.
func TestDeniedAuditFlood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := Limits{DeniedAuditPerSecond: 5, DeniedAuditBurst: 100, DeniedSummaryInterval: time.Minute}.withDefaults()
		closing := make(chan struct{})
		rec := &deniedLog{}
		d := newDeniedAuditor(l, time.Now, closing, quietLog, rec.audit, rec.summarize)
		ctx := context.Background()

		// 1000 addresses, 5 calls each, at one instant; every third
		// address is past its own failed-authentication limit.
		ownLeft, total, limitedCalls := l.DeniedAuditBurst, 0, 0
		counted := map[string]bool{}
		why := []string{"invalid API key", "no bearer credential"}
		for i := range 1000 {
			for j := range 5 {
				limited := i%3 == 0
				d.record(ctx, authority.Actor{}, addr(i), "/m", why[j%2], limited)
				total++
				if limited {
					limitedCalls++
				}
				if !limited && ownLeft > 0 {
					ownLeft--
				} else {
					counted[addr(i)] = true
				}
			}
		}
		if own, _, n := rec.counts(); own != l.DeniedAuditBurst || n != 0 {
			t.Fatalf("after the burst: %d individual records and %d summaries, want %d and none yet", own, n, l.DeniedAuditBurst)
		}
		// The flood stops: the timer writes the summary one interval after
		// its first call.
		start := time.Now()
		time.Sleep(l.DeniedSummaryInterval)
		synctest.Wait()
		if _, _, n := rec.counts(); n != 1 {
			t.Fatalf("%d summaries one interval after the burst, want 1", n)
		}
		s := rec.summaries[0]
		if s.Calls != total-l.DeniedAuditBurst || s.RateLimited != limitedCalls || s.Addresses != len(counted) || s.AddressesCapped {
			t.Errorf("summary: %d calls (%d rate-limited) from %d addresses (capped %v), want %d (%d) from %d",
				s.Calls, s.RateLimited, s.Addresses, s.AddressesCapped, total-l.DeniedAuditBurst, limitedCalls, len(counted))
		}
		if s.Reasons[why[0]]+s.Reasons[why[1]] != s.Calls || len(s.Reasons) != 2 {
			t.Errorf("reasons %v do not add up to %d calls", s.Reasons, s.Calls)
		}
		if len(s.TopAddresses) != authority.DeniedSummaryTopAddresses || s.TopAddresses[0].Count != 5 {
			t.Errorf("top addresses %v, want %d with 5 calls each", s.TopAddresses, authority.DeniedSummaryTopAddresses)
		}
		if !s.From.Equal(start) || !s.To.Equal(start.Add(l.DeniedSummaryInterval)) {
			t.Errorf("summary covers %s to %s, want %s to %s", s.From, s.To, start, start.Add(l.DeniedSummaryInterval))
		}

		// A steady flood for ten minutes, 100 calls a second from 50
		// addresses: individual records at the rate (plus the refilled
		// burst), a summary at most once per interval.
		const seconds = 600
		for i := range seconds * 100 {
			d.record(ctx, authority.Actor{}, addr(i%50), "/m", why[0], false)
			total++
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(l.DeniedSummaryInterval)
		synctest.Wait()
		own, summarized, n := rec.counts()
		if maxOwn := 2*l.DeniedAuditBurst + int(l.DeniedAuditPerSecond)*seconds; own > maxOwn {
			t.Errorf("%d individual records, want at most %d", own, maxOwn)
		}
		if own+summarized != total {
			t.Errorf("%d individual + %d summarized calls, want %d in all", own, summarized, total)
		}
		if maxN := 1 + seconds/60 + 1; n > maxN {
			t.Errorf("%d summaries, want at most %d", n, maxN)
		}
		for i := 1; i < len(rec.summaries); i++ {
			if gap := rec.summaries[i].To.Sub(rec.summaries[i-1].To); gap < l.DeniedSummaryInterval {
				t.Errorf("summaries %d and %d written %s apart, less than the interval", i-1, i, gap)
			}
		}

		// After shutdown the timer writes nothing; Flush writes the rest.
		close(closing)
		for i := range 3 {
			d.record(ctx, authority.Actor{}, addr(i), "/m", why[0], true)
			total++
		}
		time.Sleep(2 * l.DeniedSummaryInterval)
		synctest.Wait()
		if _, _, m := rec.counts(); m != n {
			t.Errorf("the timer wrote a summary after shutdown")
		}
		d.Flush(ctx)
		if own, summarized, _ := rec.counts(); own+summarized != total {
			t.Errorf("after Flush: %d individual + %d summarized calls, want %d", own, summarized, total)
		}
	})
}

// Past deniedSummaryMaxAddrs distinct addresses a summary says "at least".
func TestDeniedAuditAddressCap(t *testing.T) {
	l := Limits{DeniedAuditPerSecond: -1}.withDefaults()
	rec := &deniedLog{}
	d := newDeniedAuditor(l, time.Now, make(chan struct{}), quietLog, rec.audit, rec.summarize)
	for i := range deniedSummaryMaxAddrs + 10 {
		d.record(context.Background(), authority.Actor{}, addr(i), "/m", "invalid API key", true)
	}
	d.Flush(context.Background())
	if len(rec.summaries) != 1 {
		t.Fatalf("%d summaries, want 1", len(rec.summaries))
	}
	if s := rec.summaries[0]; s.Calls != deniedSummaryMaxAddrs+10 || s.Addresses != deniedSummaryMaxAddrs || !s.AddressesCapped {
		t.Errorf("summary: %d calls from %d addresses (capped %v), want %d from %d, capped",
			s.Calls, s.Addresses, s.AddressesCapped, deniedSummaryMaxAddrs+10, deniedSummaryMaxAddrs)
	}
}

// The same flood over a real authority and bbolt file, with a settable
// clock: the trail holds the bounded call.denied records and summary
// records whose counts add up to every other call.
func TestDeniedAuditFloodStored(t *testing.T) {
	st := bolttest.Open(t, bolt.Options{})
	var mu sync.Mutex
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	auth := authority.New(st, authority.Config{Clock: clock, Logger: quietLog})
	l := Limits{DeniedAuditPerSecond: 1, DeniedAuditBurst: 20, DeniedSummaryInterval: time.Minute}.withDefaults()
	d := newDeniedAuditor(l, clock, make(chan struct{}), quietLog, auth.RecordDenied, auth.RecordDeniedSummary)
	ctx := context.Background()

	total := 0
	for range 3 { // three intervals, 300 addresses × 2 calls each
		for i := range 600 {
			d.record(ctx, authority.Actor{Addr: addr(i%300) + ":4000"}, addr(i%300), "/portcullis.v1.BanService/CreateBan", "invalid API key", false)
			total++
		}
		advance(time.Minute)
	}
	d.Flush(ctx)

	var own, summarized, summaries int
	err := st.View(ctx, func(tx storage.ReadTx) error {
		for r, err := range tx.AuditRecords(storage.AuditQuery{}) {
			if err != nil {
				return err
			}
			switch r.Action {
			case "call.denied":
				own++
			case authority.ActionDeniedSummary:
				summaries++
				n, err := strconv.Atoi(r.Details["calls"])
				if err != nil {
					return err
				}
				summarized += n
				if r.Details["addresses"] != "300" || r.Details["reasons"] != "invalid API key="+r.Details["calls"] || r.Actor != "system" {
					t.Errorf("summary record %+v, want 300 addresses and one reason", r)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The burst, then one a second for the two minutes the clock moved.
	if maxOwn := l.DeniedAuditBurst + 2*60; own > maxOwn || own < l.DeniedAuditBurst {
		t.Errorf("%d call.denied records, want between %d and %d", own, l.DeniedAuditBurst, maxOwn)
	}
	if own+summarized != total || summaries != 3 {
		t.Errorf("%d individual + %d summarized calls in %d summaries, want %d in 3", own, summarized, summaries, total)
	}
}

// The flood (100 addresses, 60 bad keys each) through the
// authenticator, with its per-address limit, over a real authority and
// bbolt file, the clock standing still: the global burst of call.denied
// records, and one summary counting every other call, with as many
// rate-limited as were answered ResourceExhausted.
func TestDeniedFloodThroughAuthenticator(t *testing.T) {
	st := bolttest.Open(t, bolt.Options{})
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return at }
	auth := authority.New(st, authority.Config{Clock: clock, Logger: quietLog})
	l := Limits{}.withDefaults()
	d := newDeniedAuditor(l, clock, make(chan struct{}), quietLog, auth.RecordDenied, auth.RecordDeniedSummary)
	a := &authenticator{auth: auth, log: quietLog, audits: d,
		failures: newKeyedLimiter("failed_auth", l.FailedAuthPerSecond, l.FailedAuthBurst)}

	const addrs, each = 100, 60
	exhausted := 0
	for i := range addrs * each {
		ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP(addr(i % addrs)), Port: 4000 + i}})
		err := a.denied(ctx, "/portcullis.v1.BanService/ListBans", "invalid API key", errors.New("refused"))
		if status.Code(err) == codes.ResourceExhausted {
			exhausted++
		}
	}
	d.Flush(context.Background())

	var own int
	var sum storage.AuditRecord
	err := st.View(context.Background(), func(tx storage.ReadTx) error {
		for r, err := range tx.AuditRecords(storage.AuditQuery{}) {
			if err != nil {
				return err
			}
			switch r.Action {
			case "call.denied":
				own++
			case authority.ActionDeniedSummary:
				if sum.ID != "" {
					t.Errorf("a second summary: %+v", r)
				}
				sum = r
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if own != l.DeniedAuditBurst {
		t.Errorf("%d call.denied records, want the burst, %d", own, l.DeniedAuditBurst)
	}
	want := map[string]string{
		"calls":        strconv.Itoa(addrs*each - l.DeniedAuditBurst),
		"rate_limited": strconv.Itoa(exhausted),
		"addresses":    strconv.Itoa(addrs),
	}
	for k, v := range want {
		if sum.Details[k] != v {
			t.Errorf("summary %s = %q, want %q (%v)", k, sum.Details[k], v, sum.Details)
		}
	}
	// The per-address limit runs on the real clock (it refills while the
	// test runs), so only its presence is checked; the count is above.
	if exhausted == 0 {
		t.Error("no call was refused by the per-address limit")
	}
}
