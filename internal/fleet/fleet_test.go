package fleet

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func reporting(f *Fleet, key string) (*Subscriber, func()) {
	s := &Subscriber{KeyID: key, Connected: time.Now(), Identity: &Identity{Service: strings.Repeat("s", 300), InstanceID: "i"}}
	return s, f.Add(s)
}

// Only the stream's key reports for it, never beyond the revision offered,
// and the report of the loaded snapshot's revision ends the loading once.
func TestReport(t *testing.T) {
	f := New(Config{ProgressTimeout: time.Second, LoadTimeout: 10 * time.Second})
	s, remove := reporting(f, "k")
	if !s.Reporting() || !strings.HasPrefix(s.ID(), "sub_") || len(s.Identity.Service) != identityLimit {
		t.Fatalf("added: id %q, identity %+v", s.ID(), s.Identity)
	}
	plain := &Subscriber{KeyID: "k"}
	defer f.Add(plain)()
	if plain.Reporting() || len(f.Subscribers()) != 2 || len(f.Reporting()) != 1 || f.Len() != 2 {
		t.Fatalf("registry: %d subscribers, %d reporting", len(f.Subscribers()), len(f.Reporting()))
	}
	now := time.Now()
	if _, _, err := f.Report(s.ID(), "other", 0, now); !errors.Is(err, ErrUnknownSubscriber) {
		t.Fatalf("another key's report: %v", err)
	}
	s.Offer(5)
	s.SetLoading(5)
	var notSent *RevisionNotSentError
	if _, _, err := f.Report(s.ID(), "k", 6, now); !errors.As(err, &notSent) || notSent.Sent != 5 || s.Applied() != 0 {
		t.Fatalf("report beyond the offer: %v, applied %d", err, s.Applied())
	}
	if _, loaded, err := f.Report(s.ID(), "k", 4, now); err != nil || loaded || s.Loading() != 5 {
		t.Fatalf("report before the snapshot: loaded %v, err %v", loaded, err)
	}
	if got, loaded, err := f.Report(s.ID(), "k", 5, now); err != nil || !loaded || got != s || s.Applied() != 5 || s.Loading() != 0 {
		t.Fatalf("report of the snapshot: loaded %v, err %v, applied %d", loaded, err, s.Applied())
	}
	if _, loaded, _ := f.Report(s.ID(), "k", 5, now); loaded {
		t.Fatal("loaded twice")
	}
	remove()
	if _, _, err := f.Report(s.ID(), "k", 5, now); !errors.Is(err, ErrUnknownSubscriber) || !isClosed(s.Gone()) {
		t.Fatalf("report after removal: %v", err)
	}
}

// A silent reporting mirror is cut after the progress timeout, or the load
// timeout while it loads; a report restarts the clock; others never are.
func TestDeadline(t *testing.T) {
	f := New(Config{ProgressTimeout: time.Second, LoadTimeout: 10 * time.Second})
	s, remove := reporting(f, "k")
	defer remove()
	start := s.Connected
	s.SetLoading(LoadingUnknown)
	if err := f.Deadline(s, start.Add(5*time.Second)); err != nil {
		t.Fatalf("loading, 5s silent: %v", err)
	}
	if err := f.Deadline(s, start.Add(11*time.Second)); !errors.Is(err, ErrLoadTimeout) || !strings.Contains(err.Error(), "still being built") {
		t.Fatalf("loading, 11s silent: %v", err)
	}
	s.Offer(3)
	s.SetLoading(3)
	if _, _, err := f.Report(s.ID(), "k", 3, start.Add(11*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := f.Deadline(s, start.Add(11500*time.Millisecond)); err != nil {
		t.Fatalf("reported 0.5s ago: %v", err)
	}
	if err := f.Deadline(s, start.Add(13*time.Second)); !errors.Is(err, ErrNoProgress) {
		t.Fatalf("loaded, 2s silent: %v", err)
	}
	plain := &Subscriber{}
	defer f.Add(plain)()
	if err := f.Deadline(plain, start.Add(time.Hour)); err != nil {
		t.Fatalf("a subscriber that does not report: %v", err)
	}
}

// A wait ends when every mirror known at the write has applied it, woken
// by the reports; one that leaves is reported disconnected, one that does
// not answer a laggard when the wait runs out.
func TestWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := New(Config{ProgressTimeout: time.Minute, LoadTimeout: time.Hour})
		a, _ := reporting(f, "k")
		b, removeB := reporting(f, "k")
		c, _ := reporting(f, "k")
		for _, s := range []*Subscriber{a, b, c} {
			s.Offer(7)
		}
		if _, _, err := f.Report(a.ID(), "k", 7, time.Now()); err != nil {
			t.Fatal(err)
		}
		if e := f.Wait(context.Background(), 7, 0); e.Confirmed != 1 || e.Total != 3 || len(e.Laggards) != 2 {
			t.Fatalf("zero wait: %+v", e)
		}
		go func() {
			time.Sleep(time.Second)
			removeB()
			time.Sleep(time.Second)
			f.Report(c.ID(), "k", 7, time.Now())
		}()
		e := f.Wait(context.Background(), 7, time.Minute)
		if e.Confirmed != 2 || e.Total != 3 || len(e.Laggards) != 0 || len(e.Disconnected) != 1 || e.Disconnected[0] != b || e.Elapsed != 2*time.Second {
			t.Fatalf("wait: %+v", e)
		}
		e = f.Wait(context.Background(), 8, 3*time.Second)
		if e.Confirmed != 0 || len(e.Laggards) != 2 || e.Elapsed != 3*time.Second {
			t.Fatalf("wait for a revision nobody applies: %+v", e)
		}
	})
}
