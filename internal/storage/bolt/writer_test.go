package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt/bolttest"
)

// quiet drops the log of tests that panic on purpose.
var quiet = slog.New(slog.DiscardHandler)

// TestGroupCommitIsolatesFailures queues many Updates behind a blocked
// writer so that they form one batch; some fail and one panics. The others
// must commit together, each with its own revision, and the failing ones
// must leave no trace and get their own error back.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	s := bolttest.Open(t, bolt.Options{Logger: quiet})
	const n = 60
	release := blockWriter(t, s)
	commitsBefore, attemptsBefore := s.Commits(), s.Attempts()

	type result struct {
		rev int64
		err error
	}
	results := make([]result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		ban := testBan(fmt.Sprintf("ban_%02d", i))
		ok := putBanEmit(ban)
		fn := ok
		switch {
		case i == 17:
			fn = func(tx storage.Tx) error {
				if err := ok(tx); err != nil {
					return err
				}
				panic("update function bug")
			}
		case i%5 == 3:
			errs[i] = fmt.Errorf("refused %d", i)
			fn = func(tx storage.Tx) error {
				if err := ok(tx); err != nil {
					return err
				}
				return errs[i]
			}
		}
		wg.Go(func() {
			rev, err := s.Update(context.Background(), fn)
			results[i] = result{rev, err}
		})
	}
	waitFor(t, "all Updates queued", func() bool { return s.QueueLen() == n })
	release()
	wg.Wait()

	failures := 0
	revs := make(map[int64]int)
	for i, r := range results {
		id := fmt.Sprintf("ban_%02d", i)
		switch {
		case i == 17:
			failures++
			if !errors.Is(r.err, bolt.ErrPanicked) {
				t.Errorf("panicking Update: got %v, want ErrPanicked", r.err)
			}
			if hasBan(t, s, id) {
				t.Errorf("panicking Update wrote its ban")
			}
		case errs[i] != nil:
			failures++
			if r.err != errs[i] {
				t.Errorf("Update %d: got %v, want its own error %v", i, r.err, errs[i])
			}
			if hasBan(t, s, id) {
				t.Errorf("failed Update %d wrote its ban", i)
			}
		default:
			if r.err != nil {
				t.Errorf("Update %d: %v", i, r.err)
				continue
			}
			if !hasBan(t, s, id) {
				t.Errorf("Update %d committed without its ban", i)
			}
			if j, dup := revs[r.rev]; dup {
				t.Errorf("Updates %d and %d both got revision %d", j, i, r.rev)
			}
			revs[r.rev] = i
		}
	}
	// The blocker's transaction had begun before the counts were taken
	// and committed after; the queued Updates then took one more commit,
	// after one rolled-back attempt per failure. A failure that came
	// after others of its transaction ran once more alone (failing again,
	// committing nothing); only those queued before every success did not.
	if got := s.Commits() - commitsBefore; got != 2 {
		t.Errorf("%d commits, want 2 (the blocker and one group)", got)
	}
	if got, lo, hi := s.Attempts()-attemptsBefore, int64(failures)+1, int64(2*failures)+1; got < lo || got > hi {
		t.Errorf("%d transactions, want %d to %d", got, lo, hi)
	}
	// Revisions are gap-free in bolt: the group took exactly the next ones.
	head := revision(t, s)
	for rev := head - int64(len(revs)) + 1; rev <= head; rev++ {
		if _, ok := revs[rev]; !ok {
			t.Errorf("revision %d was not given to any Update (head %d)", rev, head)
		}
	}
	// The writer survived the panic.
	mustUpdate(t, s, putBanEmit(testBan("ban_after")))
}

func TestPanicAlone(t *testing.T) {
	s := bolttest.Open(t, bolt.Options{Logger: quiet})
	_, err := s.Update(t.Context(), func(storage.Tx) error { panic(errors.New("boom")) })
	if !errors.Is(err, bolt.ErrPanicked) {
		t.Fatalf("got %v, want ErrPanicked", err)
	}
	if rev := mustUpdate(t, s, putBanEmit(testBan("b1"))); rev != 1 {
		t.Errorf("revision after a panicking Update: %d, want 1", rev)
	}
}

func TestUpdateContext(t *testing.T) {
	t.Run("CancelledBeforeCall", func(t *testing.T) {
		s := bolttest.Open(t, bolt.Options{})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		ran := false
		if _, err := s.Update(ctx, func(storage.Tx) error { ran = true; return nil }); !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
		if ran {
			t.Errorf("the function ran")
		}
	})

	t.Run("CancelledWhileQueued", func(t *testing.T) {
		s := bolttest.Open(t, bolt.Options{})
		release := blockWriter(t, s)
		ctx, cancel := context.WithCancel(t.Context())
		var ran atomic.Bool
		done := make(chan error, 1)
		go func() {
			_, err := s.Update(ctx, func(tx storage.Tx) error {
				ran.Store(true)
				return putBanEmit(testBan("queued"))(tx)
			})
			done <- err
		}()
		waitFor(t, "the Update queued", func() bool { return s.QueueLen() == 1 })
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
		release()
		mustUpdate(t, s, putBanEmit(testBan("later"))) // the writer has passed the withdrawn request
		if ran.Load() || hasBan(t, s, "queued") {
			t.Errorf("a withdrawn Update ran")
		}
	})

	t.Run("CancelledWhileRunning", func(t *testing.T) {
		// Once the function ran and committed, the result counts.
		s := bolttest.Open(t, bolt.Options{})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		rev, err := s.Update(ctx, func(tx storage.Tx) error {
			cancel()
			return putBanEmit(testBan("ran"))(tx)
		})
		if err != nil || rev != 1 {
			t.Errorf("got revision %d, error %v; want 1, nil", rev, err)
		}
		if !hasBan(t, s, "ran") {
			t.Errorf("committed ban missing")
		}
	})
}

func TestUpdateWithoutEventsKeepsRevision(t *testing.T) {
	s := bolttest.Open(t, bolt.Options{})
	writeBans(t, s, "b", 3)
	rev := mustUpdate(t, s, func(tx storage.Tx) error { return tx.PutBan(testBan("quiet")) })
	if rev != 3 {
		t.Errorf("Update without events returned %d, want the current revision 3", rev)
	}
	if got := mustUpdate(t, s, putBanEmit(testBan("loud"))); got != 4 {
		t.Errorf("next change got revision %d, want 4", got)
	}
}

// TestConcurrentReadWrite mixes writers that create, revoke and delete
// sessions with readers iterating over them; the race detector and the
// consistency check at cleanup do the judging.
func TestConcurrentReadWrite(t *testing.T) {
	s := bolttest.Open(t, bolt.Options{MaxBatch: 8})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 40 {
				ses := storage.Session{ID: fmt.Sprintf("ses_%d_%03d", w, i), TenantID: "t1", UserID: fmt.Sprintf("u%d", i%3), DeviceID: fmt.Sprintf("d%d", w%2), CreateTime: base}
				mustUpdate(t, s, func(tx storage.Tx) error { return tx.PutSession(ses) })
				if i%4 == 0 {
					mustUpdate(t, s, func(tx storage.Tx) error {
						for old, err := range tx.Sessions(storage.SessionQuery{TenantID: "t1", UserID: ses.UserID}) {
							if err != nil {
								return err
							}
							old.RevokeTime = base
							if err := tx.PutSession(old); err != nil {
								return err
							}
							if err := tx.Emit(storage.Event{Kind: storage.EventSessionRevoked, Session: &old}); err != nil {
								return err
							}
						}
						return nil
					})
				}
				if i%5 == 0 {
					mustUpdate(t, s, func(tx storage.Tx) error { return tx.DeleteSession(ses.ID) })
				}
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for range 50 {
				err := s.View(context.Background(), func(tx storage.ReadTx) error {
					prev := ""
					for ses, err := range tx.Sessions(storage.SessionQuery{TenantID: "t1", DeviceID: "d1"}) {
						if err != nil {
							return err
						}
						if ses.ID <= prev || ses.DeviceID != "d1" {
							return fmt.Errorf("session %s (device %s) after %s", ses.ID, ses.DeviceID, prev)
						}
						prev = ses.ID
					}
					return nil
				})
				if err != nil {
					t.Errorf("View: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}
