package authority_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

// changesSince returns the events committed after revision from, up to
// the store's current revision.
func changesSince(t *testing.T, a *authority.Authority, from int64) []storage.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // hang guard
	defer cancel()
	to, err := a.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w, err := a.Watch(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var out []storage.Event
	for w.Revision() < to {
		c, err := w.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c.Events...)
	}
	return out
}

func revision(t *testing.T, a *authority.Authority) int64 {
	t.Helper()
	rev, err := a.Revision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func ban(t *testing.T, a *authority.Authority, kind storage.SubjectKind, value, duration string, caps ...string) storage.Ban {
	t.Helper()
	b, _, err := a.CreateBan(context.Background(), authority.System, authority.BanInput{
		Kind: kind, Value: value, Duration: duration, Capabilities: caps, Reason: "test"})
	if err != nil {
		t.Fatalf("CreateBan(%s %s %s): %v", kind, value, duration, err)
	}
	return b
}

// expired returns the IDs of the bans of the ban.expired events in evs.
func expired(t *testing.T, evs []storage.Event) []string {
	t.Helper()
	var ids []string
	for _, ev := range evs {
		if ev.Kind == storage.EventBanExpired {
			if ev.Ban == nil || ev.Ban.ExpiryAnnounced.IsZero() {
				t.Fatalf("ban.expired event without its announced ban: %+v", ev)
			}
			ids = append(ids, ev.Ban.ID)
		}
	}
	return ids
}

func TestAnnounceExpiredBans(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			a := authority.New(open(t), authority.Config{Clock: c.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			ctx := context.Background()
			start := c.Now()

			alice := ban(t, a, storage.SubjectUser, "alice", "1h")
			bob := ban(t, a, storage.SubjectUser, "bob", "2h")
			carol := ban(t, a, storage.SubjectUser, "carol", "1h")
			if _, _, err := a.LiftBan(ctx, authority.System, carol.ID, "appeal"); err != nil {
				t.Fatal(err)
			}
			// Never announced, and sooner than alice's, so that next
			// shows they are not counted either.
			ban(t, a, storage.SubjectUser, "dave", "10m", "post")
			ban(t, a, storage.SubjectDevice, "d1", "20m")
			ban(t, a, storage.SubjectIP, "203.0.113.7", "30m")
			ban(t, a, storage.SubjectUser, "erin", "") // permanent

			announce := func(wantNext time.Time) []string {
				t.Helper()
				before := revision(t, a)
				next, err := a.AnnounceExpiredBans(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !next.Equal(wantNext) {
					t.Errorf("at %v: next %v, want %v", c.Now().Sub(start), next, wantNext)
				}
				return expired(t, changesSince(t, a, before))
			}
			if got := announce(start.Add(time.Hour)); len(got) != 0 {
				t.Fatalf("before any expiry: announced %v", got)
			}

			c.Advance(time.Hour)
			if got := announce(start.Add(2 * time.Hour)); len(got) != 1 || got[0] != alice.ID {
				t.Fatalf("after an hour: announced %v, want alice's %s", got, alice.ID)
			}
			b, err := a.GetBan(ctx, alice.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !b.ExpiryAnnounced.Equal(c.Now()) {
				t.Errorf("alice's ban ExpiryAnnounced %v, want %v", b.ExpiryAnnounced, c.Now())
			}
			before := revision(t, a)
			if got := announce(start.Add(2 * time.Hour)); len(got) != 0 {
				t.Fatalf("again: announced %v", got)
			}
			if after := revision(t, a); after != before {
				t.Errorf("a call with nothing to announce wrote (revision %d -> %d)", before, after)
			}

			c.Advance(24 * time.Hour)
			if got := announce(time.Time{}); len(got) != 1 || got[0] != bob.ID {
				t.Fatalf("a day later: announced %v, want bob's %s", got, bob.ID)
			}
			if got := announce(time.Time{}); len(got) != 0 {
				t.Fatalf("a day later, again: announced %v", got)
			}
		})
	}
}

// Many bans expire at once: the announcements go in batches that fit the
// store (etcd's --max-txn-ops, 40 in one backend), over several scan
// pages, each ban once, however many callers race.
func TestAnnounceExpiredBansBatches(t *testing.T) {
	defer authority.SetBanExpiryScanPage(64)()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			a := authority.New(open(t), authority.Config{Clock: c.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			ctx := context.Background()
			const n = 250
			want := map[string]bool{}
			for i := range n {
				want[ban(t, a, storage.SubjectUser, fmt.Sprintf("u%03d", i), "1h").ID] = true
			}
			later := ban(t, a, storage.SubjectUser, "later", "3h")
			c.Advance(time.Hour)
			before := revision(t, a)

			var wg sync.WaitGroup
			nexts := make([]time.Time, 3)
			errs := make([]error, 3)
			for i := range nexts {
				wg.Go(func() { nexts[i], errs[i] = a.AnnounceExpiredBans(ctx) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("caller %d: %v", i, err)
				}
				if !nexts[i].Equal(later.ExpireTime) {
					t.Errorf("caller %d: next %v, want %v", i, nexts[i], later.ExpireTime)
				}
			}
			got := expired(t, changesSince(t, a, before))
			seen := map[string]bool{}
			for _, id := range got {
				if seen[id] {
					t.Fatalf("ban %s announced twice", id)
				}
				seen[id] = true
				if !want[id] {
					t.Fatalf("ban %s announced, not one that expired", id)
				}
			}
			if len(seen) != n {
				t.Fatalf("%d bans announced, want %d", len(seen), n)
			}
		})
	}
}
