package bolt_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt/bolttest"
)

var errSawBan = errors.New("saw the ban")

// TestFailureAnsweredOnCommittedState: A writes a ban and B, in the same
// batch after A, fails when it sees that ban. B's failure must not be
// answered before A's ban is committed: a caller told "the ban exists"
// must find it with a read made after that answer (the robustness
// harness found this as a non-linearizable history: RevokeSession
// answered "already revoked" on a revocation nobody could see yet).
//
// A's function holds its second run (the retry after B's rollback) until
// B's caller has returned and looked, or, when B is not answered while A
// is held, until fake time moves: under synctest that happens only once
// every goroutine is blocked, so the test neither sleeps nor races.
func TestFailureAnsweredOnCommittedState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := bolttest.Open(t, bolt.Options{})
		ban := testBan("ban_a")
		release := blockWriter(t, s)

		bReturned, bChecked := make(chan struct{}), make(chan struct{})
		runs := 0
		aDone := make(chan error, 1)
		go func() {
			_, err := s.Update(context.Background(), func(tx storage.Tx) error {
				if runs++; runs > 1 {
					select {
					case <-bReturned:
						<-bChecked
					case <-time.After(time.Minute):
					}
				}
				return putBanEmit(ban)(tx)
			})
			aDone <- err
		}()
		waitFor(t, "A queued", func() bool { return s.QueueLen() == 1 })

		var bErr error
		var visible bool
		go func() {
			_, bErr = s.Update(context.Background(), func(tx storage.Tx) error {
				if _, err := tx.Ban(ban.ID); err == nil {
					return errSawBan
				}
				return nil
			})
			close(bReturned)
			_ = s.View(context.Background(), func(tx storage.ReadTx) error {
				_, err := tx.Ban(ban.ID)
				visible = err == nil
				return nil
			})
			close(bChecked)
		}()
		waitFor(t, "B queued", func() bool { return s.QueueLen() == 2 })
		release()
		if err := <-aDone; err != nil {
			t.Fatal(err)
		}
		<-bChecked
		if !errors.Is(bErr, errSawBan) {
			t.Fatalf("B: got %v, want %v (it ran after A)", bErr, errSawBan)
		}
		if !visible {
			t.Fatal("B was answered with an error computed from A's uncommitted ban: a read after the answer does not find it")
		}
	})
}
