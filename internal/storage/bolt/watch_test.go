package bolt_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt/bolttest"
)

// TestWatchPaths: a watcher far behind reads the file page by page, then
// catches up through the cache; with and without a cache, and with one
// smaller than a page.
func TestWatchPaths(t *testing.T) {
	for _, cache := range []int{-1, 3, 1024} {
		s := bolttest.Open(t, bolt.Options{WatchCache: cache})
		revs := writeBans(t, s, "ban_", 200) // more than a page (128)
		wantWatchFrom(t, s, 0, revs[len(revs)-1])
		wantWatchFrom(t, s, 190, revs[len(revs)-1])
	}
}

// TestSlowWatcherDoesNotBlock: a watcher that reads nothing holds up neither
// the writer nor another watcher.
func TestSlowWatcherDoesNotBlock(t *testing.T) {
	s := bolttest.Open(t, bolt.Options{WatchCache: 16})
	slow, err := s.Watch(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fast, err := s.Watch(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	const n = 200
	got := make(chan int64, n)
	go func() {
		defer close(got)
		for range n {
			c, err := fast.Next(waitCtx(t))
			if err != nil {
				t.Errorf("fast watcher: %v", err)
				return
			}
			got <- c.Revision
		}
	}()
	writeBans(t, s, "ban_", n)
	want := int64(1)
	for rev := range got {
		if rev != want {
			t.Fatalf("fast watcher got %d, want %d", rev, want)
		}
		want++
	}
	// The slow one still gets everything, from the file.
	for want := int64(1); want <= n; want++ {
		c, err := slow.Next(waitCtx(t))
		if err != nil || c.Revision != want {
			t.Fatalf("slow watcher: change %d, %v; want %d", c.Revision, err, want)
		}
	}
}

// TestManyFollowers: many watchers at the head share the cached changes.
func TestManyFollowers(t *testing.T) {
	s := bolttest.Open(t, bolt.Options{})
	const watchers, n = 50, 100
	var wg sync.WaitGroup
	for range watchers {
		w, err := s.Watch(t.Context(), 0)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer w.Close()
			for want := int64(1); want <= n; want++ {
				c, err := w.Next(waitCtx(t))
				if err != nil || c.Revision != want || len(c.Events) != 1 || c.Events[0].Ban == nil {
					t.Errorf("watcher: change %+v, %v; want revision %d with its ban", c, err, want)
					return
				}
			}
		})
	}
	var writers sync.WaitGroup
	for range 4 {
		writers.Go(func() { writeBans(t, s, "ban_", n/4) })
	}
	writers.Wait()
	wg.Wait()
}

func TestWatcherClose(t *testing.T) {
	s := bolttest.Open(t, bolt.Options{})
	w, err := s.Watch(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	result := make(chan error, 1)
	go func() {
		_, err := w.Next(waitCtx(t))
		result <- err
	}()
	w.Close()
	if err := <-result; !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Next blocked in a closed watcher: %v, want ErrClosed", err)
	}
	w.Close() // twice is harmless
	writeBans(t, s, "ban_", 1)
	if _, err := w.Next(waitCtx(t)); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Next after Close: %v, want ErrClosed", err)
	}
}
