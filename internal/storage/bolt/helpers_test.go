package bolt_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

var base = time.Date(2025, time.March, 14, 15, 9, 26, 535897932, time.UTC)

func testBan(id string) storage.Ban {
	return storage.Ban{
		ID: id, TenantID: "t1", Kind: storage.SubjectUser, Value: "user-" + id,
		Reason: "test", CreatedBy: "tester", CreateTime: base,
	}
}

// putBanEmit is an idempotent update function: write a ban and announce it.
func putBanEmit(b storage.Ban) func(storage.Tx) error {
	return func(tx storage.Tx) error {
		if err := tx.PutBan(b); err != nil {
			return err
		}
		return tx.Emit(storage.Event{Kind: storage.EventBanCreated, Time: b.CreateTime, Ban: &b})
	}
}

func mustUpdate(t testing.TB, s storage.Store, fn func(storage.Tx) error) int64 {
	t.Helper()
	rev, err := s.Update(context.Background(), fn)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	return rev
}

// writeBans makes n Updates, one ban and one change each, and returns their
// revisions.
func writeBans(t testing.TB, s storage.Store, prefix string, n int) []int64 {
	t.Helper()
	revs := make([]int64, n)
	for i := range n {
		revs[i] = mustUpdate(t, s, putBanEmit(testBan(fmt.Sprintf("%s%05d", prefix, i))))
	}
	return revs
}

func hasBan(t testing.TB, s storage.Store, id string) bool {
	t.Helper()
	found := false
	err := s.View(context.Background(), func(tx storage.ReadTx) error {
		_, err := tx.Ban(id)
		found = err == nil
		return nil
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	return found
}

func revision(t testing.TB, s storage.Store) int64 {
	t.Helper()
	var rev int64
	if err := s.View(context.Background(), func(tx storage.ReadTx) error {
		rev = tx.Revision()
		return nil
	}); err != nil {
		t.Fatalf("View: %v", err)
	}
	return rev
}

// waitFor yields until cond holds. It polls a condition that the code under
// test makes true within microseconds (a request reaching the queue); there
// is no event to wait on without a test hook in the writer.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

// blockWriter runs an Update whose function waits for release, so that the
// Updates made meanwhile queue up and form the next batch together. It
// returns once the function is running, and a function that releases it and
// waits for its Update to return.
func blockWriter(t testing.TB, s storage.Store) (release func()) {
	t.Helper()
	running := make(chan struct{})
	gate := make(chan struct{})
	done := make(chan error, 1)
	first := true
	go func() {
		_, err := s.Update(context.Background(), func(storage.Tx) error {
			if first { // runs once: nothing else is in its batch
				first = false
				close(running)
			}
			<-gate
			return nil
		})
		done <- err
	}()
	<-running
	return func() {
		close(gate)
		if err := <-done; err != nil {
			t.Errorf("blocking Update: %v", err)
		}
	}
}

// waitCtx bounds a wait that should end within milliseconds, so that a bug
// fails the test instead of hanging it.
func waitCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
