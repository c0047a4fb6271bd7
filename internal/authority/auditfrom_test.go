package authority_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt/bolttest"
)

// TestListAuditRecordsFromStartsAtFrom: a listing with a start time
// starts its scan there (idBefore) and still returns exactly the records
// at or after it, including one written while the clock went back (its
// ID is ahead of its time), across pages.
func TestListAuditRecordsFromStartsAtFrom(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := &clock{now: t0}
	a := authority.New(bolttest.Open(t, bolt.Options{}), authority.Config{Clock: clk.Now})
	key := func(name string) {
		t.Helper()
		if _, _, err := a.CreateAPIKey(ctx, authority.System, name, []string{authority.ScopeBansRead}, nil); err != nil {
			t.Fatal(err)
		}
	}
	key("k0")                     // t0
	clk.Advance(time.Millisecond) // t0+1ms: the next millisecond
	key("k1")
	clk.Advance(time.Hour)
	key("k2") // t0+1h
	clk.Advance(-30 * time.Minute)
	key("k3") // t0+30m, ID after k2's
	clk.Advance(time.Hour)
	key("k4") // t0+90m

	list := func(from time.Time) []string {
		t.Helper()
		var names []string
		p := authority.Page{Size: 1}
		for {
			recs, next, err := a.ListAuditRecords(ctx, authority.AuditFilter{Action: "apikey.create", From: from}, p)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				names = append(names, r.Details["name"]+"@"+r.Time.Sub(t0).String())
			}
			if next == "" {
				return names
			}
			p.Token = next
		}
	}
	for _, c := range []struct {
		from time.Time
		want []string
	}{
		{t0, []string{"k0@0s", "k1@1ms", "k2@1h0m0.001s", "k3@30m0.001s", "k4@1h30m0.001s"}},
		{t0.Add(time.Millisecond), []string{"k1@1ms", "k2@1h0m0.001s", "k3@30m0.001s", "k4@1h30m0.001s"}},
		{t0.Add(500 * time.Microsecond), []string{"k1@1ms", "k2@1h0m0.001s", "k3@30m0.001s", "k4@1h30m0.001s"}},
		{t0.Add(20 * time.Minute), []string{"k2@1h0m0.001s", "k3@30m0.001s", "k4@1h30m0.001s"}},
		{t0.Add(45 * time.Minute), []string{"k2@1h0m0.001s", "k4@1h30m0.001s"}},
		{t0.Add(2 * time.Hour), nil},
	} {
		if got := list(c.from); !slices.Equal(got, c.want) {
			t.Errorf("from t0+%v: %v, want %v", c.from.Sub(t0), got, c.want)
		}
	}
}

// TestListAuditRecordsBoundsItsScan: a filter no index serves (an action)
// reads at most the scan limit per page; a page then ends short, even
// empty, with a token, and the pages together hold exactly the matches.
func TestListAuditRecordsBoundsItsScan(t *testing.T) {
	ctx := context.Background()
	defer authority.SetAuditScanLimit(4)()
	clk := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	a := authority.New(bolttest.Open(t, bolt.Options{}), authority.Config{Clock: clk.Now})
	for i := range 11 {
		clk.Advance(time.Second)
		k, _, err := a.CreateAPIKey(ctx, authority.System, "k"+string(rune('a'+i)), []string{authority.ScopeBansRead}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if i == 8 { // one record of another action among the others
			if _, err := a.RevokeAPIKey(ctx, authority.System, k.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	var sizes []int
	var got []string
	p := authority.Page{Size: 10}
	for {
		recs, next, err := a.ListAuditRecords(ctx, authority.AuditFilter{Action: "apikey.revoke"}, p)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(recs))
		for _, r := range recs {
			got = append(got, r.Action)
		}
		if next == "" {
			break
		}
		p.Token = next
	}
	// 12 records read 4 at a time: the match is the tenth; pages of 0, 0
	// and 1 (then what is left after it, none matching).
	if len(got) != 1 || got[0] != "apikey.revoke" {
		t.Fatalf("records: %v, want the one apikey.revoke", got)
	}
	if len(sizes) < 3 || sizes[0] != 0 {
		t.Fatalf("page sizes %v: want several pages, the first empty (4 records read, none matching)", sizes)
	}
}
