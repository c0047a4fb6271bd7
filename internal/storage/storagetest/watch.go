package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

func watch(t *testing.T, s storage.Store, after int64) storage.Watcher {
	t.Helper()
	w, err := s.Watch(t.Context(), after)
	if err != nil {
		t.Fatalf("Watch(%d): %v", after, err)
	}
	t.Cleanup(w.Close)
	if w.Revision() != after {
		t.Errorf("new watcher: Revision %d, want %d", w.Revision(), after)
	}
	return w
}

func next(t *testing.T, w storage.Watcher) storage.Change {
	t.Helper()
	c, err := w.Next(waitCtx(t))
	if err != nil {
		t.Fatalf("Next after %d: %v", w.Revision(), err)
	}
	if w.Revision() != c.Revision {
		t.Errorf("watcher Revision %d after returning change %d", w.Revision(), c.Revision)
	}
	return c
}

// wantNothing checks that w has no change ready: Next must wait until its
// context ends and then return the context's error.
func wantNothing(t *testing.T, w storage.Watcher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	c, err := w.Next(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next with nothing to deliver: got change %d, error %v; want DeadlineExceeded", c.Revision, err)
	}
}

// writeChanges makes n Updates, each emitting events of all three payload
// kinds, and returns the changes they should produce.
func writeChanges(t *testing.T, s storage.Store, n int) []storage.Change {
	t.Helper()
	var out []storage.Change
	for i := range n {
		ban := newBan(fmt.Sprintf("ban_%03d", i), "t1", storage.SubjectIP, "203.0.113.0/24")
		ban.Capabilities = []string{"post"}
		events := []storage.Event{
			banEvent(storage.EventBanCreated, ban),
			sessionEvent(revokedSession(fmt.Sprintf("ses_%03d", i), at(time.Duration(i)*time.Second))),
		}
		if i%2 == 0 {
			events = append(events, storage.Event{Kind: storage.EventKeyAdded, Time: at(0), Key: publicKey(newSigningKey(fmt.Sprintf("kid_%d", i), at(0)))})
		}
		rev := update(t, s, func(tx storage.Tx) error {
			if err := tx.PutBan(ban); err != nil {
				return err
			}
			return emitAll(tx, events...)
		})
		if len(out) > 0 && rev <= out[len(out)-1].Revision {
			t.Fatalf("revision %d after %d", rev, out[len(out)-1].Revision)
		}
		out = append(out, storage.Change{Revision: rev, Events: events})
	}
	return out
}

func testWatch(t *testing.T, newStore func(*testing.T) storage.Store) {
	t.Run("FromZero", func(t *testing.T) {
		s := newStore(t)
		want := writeChanges(t, s, 5)
		w := watch(t, s, 0)
		for _, c := range want {
			same(t, fmt.Sprintf("change %d", c.Revision), next(t, w), c, normChange)
		}
		wantNothing(t, w)
	})

	t.Run("FromMiddle", func(t *testing.T) {
		s := newStore(t)
		want := writeChanges(t, s, 6)
		for k := range want {
			w := watch(t, s, want[k].Revision)
			for _, c := range want[k+1:] {
				same(t, fmt.Sprintf("change %d after %d", c.Revision, want[k].Revision), next(t, w), c, normChange)
			}
			wantNothing(t, w)
		}
	})

	t.Run("BlocksUntilChange", func(t *testing.T) {
		s := newStore(t)
		w := watch(t, s, currentRevision(t, s))
		wantNothing(t, w)

		// A context that is already over: Next says so at once.
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := w.Next(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Next with a cancelled context: %v, want context.Canceled", err)
		}

		// The watcher stays usable; a Next already waiting gets the change.
		got := make(chan storage.Change, 1)
		failed := make(chan error, 1)
		go func() {
			c, err := w.Next(waitCtx(t))
			if err != nil {
				failed <- err
				return
			}
			got <- c
		}()
		want := writeChanges(t, s, 1)
		select {
		case c := <-got:
			same(t, "change delivered to a waiting Next", c, want[0], normChange)
		case err := <-failed:
			t.Fatalf("waiting Next: %v", err)
		}
		wantNothing(t, w)
	})

	t.Run("FutureRevision", func(t *testing.T) {
		s := newStore(t)
		writeChanges(t, s, 2)
		future := currentRevision(t, s) + 1_000_000
		if _, err := s.Watch(t.Context(), future); !errors.Is(err, storage.ErrFutureRevision) {
			t.Errorf("Watch(%d): got %v, want ErrFutureRevision", future, err)
		}
	})

	t.Run("ConcurrentWritersAndWatchers", func(t *testing.T) {
		s := newStore(t)
		testConcurrentWatch(t, s, 4, 25, 3)
	})
}

// testConcurrentWatch runs writers Updates concurrently (perWriter each, two
// events apiece) while watchers follow: every watcher must see every change
// exactly once, in order, with the events its Update emitted.
func testConcurrentWatch(t *testing.T, s storage.Store, writers, perWriter, watchers int) {
	start := currentRevision(t, s)
	total := writers * perWriter
	ws := make([]storage.Watcher, watchers)
	for i := range ws {
		ws[i] = watch(t, s, start)
	}
	seen := make([][]storage.Change, watchers)
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Go(func() {
			ctx := waitCtx(t)
			for len(seen[i]) < total {
				c, err := w.Next(ctx)
				if err != nil {
					t.Errorf("watcher %d after %d changes: %v", i, len(seen[i]), err)
					return
				}
				seen[i] = append(seen[i], c)
			}
		})
	}

	var mu sync.Mutex
	written := make(map[int64][]storage.Event)
	var writersWG sync.WaitGroup
	for wr := range writers {
		writersWG.Go(func() {
			for j := range perWriter {
				b1 := newBan(fmt.Sprintf("ban_w%d_%03d_a", wr, j), "t1", storage.SubjectUser, fmt.Sprintf("user%d", wr))
				b2 := newBan(fmt.Sprintf("ban_w%d_%03d_b", wr, j), "t2", storage.SubjectDevice, fmt.Sprintf("dev%d", wr))
				events := []storage.Event{banEvent(storage.EventBanCreated, b1), banEvent(storage.EventBanLifted, b2)}
				rev, err := s.Update(t.Context(), func(tx storage.Tx) error {
					if err := tx.PutBan(b1); err != nil {
						return err
					}
					if err := tx.PutBan(b2); err != nil {
						return err
					}
					return emitAll(tx, events...)
				})
				if err != nil {
					t.Errorf("writer %d: %v", wr, err)
					return
				}
				mu.Lock()
				if _, dup := written[rev]; dup {
					t.Errorf("revision %d returned to two Updates", rev)
				}
				written[rev] = events
				mu.Unlock()
			}
		})
	}
	writersWG.Wait()
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(written) != total {
		t.Fatalf("%d distinct revisions for %d Updates", len(written), total)
	}
	for i, changes := range seen {
		prev := start
		for _, c := range changes {
			if c.Revision <= prev {
				t.Fatalf("watcher %d: revision %d after %d", i, c.Revision, prev)
			}
			prev = c.Revision
			want, ok := written[c.Revision]
			if !ok {
				t.Fatalf("watcher %d: revision %d was returned to no Update", i, c.Revision)
			}
			same(t, fmt.Sprintf("watcher %d change %d", i, c.Revision), c, storage.Change{Revision: c.Revision, Events: want}, normChange)
		}
		wantNothing(t, ws[i])
	}
}
