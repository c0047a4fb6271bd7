package robustness

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
)

// errSawRevoked is the answer of an update function that found the
// session revoked (as RevokeSession answers SESSION_ALREADY_REVOKED).
var errSawRevoked = errors.New("session already revoked")

// TestBoltFailedUpdateSeesUncommittedWrites reproduces what the bbolt run
// found (a non-linearizable history: RevokeSession answered "already
// revoked" by a ban that CheckBan and VerifySession, called after that
// answer, did not see yet).
//
// The bbolt writer runs a batch's functions one after another in one
// transaction. When one fails, it answers that caller at once with the
// error and rolls back (internal/storage/bolt/writer.go, attempt: "if err
// != nil { r.answer(0, err); return true }"). But the failing function
// ran after the others of the batch and may have failed because of what
// they wrote, which is not committed: it is rolled back and committed
// only by the retry, later, or never if the process dies first. The
// caller acts on a write that may never happen (a dirty read, G1b):
// here, A revokes the session and B, batched after A, fails with
// "already revoked" while a View afterwards sees the session live.
//
// Reproduction: X holds the writer; A (revoke) and B (fail if revoked)
// queue behind it and run in one batch, A first; A's retry is held until
// the test has looked (at most 5s, so that a fixed writer, which answers
// B only after A commits, does not wait for the test). Fixed when a failing function's error is answered
// only once it is known not to depend on uncommitted writes (for example,
// answer failures after the rest of the batch commits, or run the failing
// function again on its own).
func TestBoltFailedUpdateSeesUncommittedWrites(t *testing.T) {
	t.Skip("bug: bolt writer answers a failed update function's error computed from the uncommitted writes of earlier functions in its batch (dirty read; see the comment)")
	s, err := bolt.Open(filepath.Join(t.TempDir(), "p.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now().UTC()

	for trial := range 200 {
		id := fmt.Sprintf("ses_%d", trial)
		if _, err := s.Update(ctx, func(tx storage.Tx) error {
			return tx.PutSession(storage.Session{ID: id, TenantID: "public", UserID: "u", CreateTime: now, RefreshTime: now, ExpireTime: now.Add(time.Hour)})
		}); err != nil {
			t.Fatal(err)
		}
		hold, release := make(chan struct{}), make(chan struct{})
		holding := make(chan struct{})
		go s.Update(ctx, func(storage.Tx) error { // X
			select {
			case <-holding:
			default:
				close(holding)
			}
			<-hold
			return nil
		})
		<-holding
		var aRuns atomic.Int32
		aDone := make(chan error, 1)
		go func() { // A: revokes the session; its retry waits for release
			_, err := s.Update(ctx, func(tx storage.Tx) error {
				if aRuns.Add(1) > 1 {
					// Held while the test looks. A writer that answers B
					// only after A commits would wait for this forever:
					// give up holding after a while (the bug answers B
					// before A's retry starts, so it shows in time).
					t := time.NewTimer(5 * time.Second)
					select {
					case <-release:
					case <-t.C:
					}
					t.Stop()
				}
				ses, err := tx.Session(id)
				if err != nil {
					return err
				}
				ses.RevokeTime = now
				return tx.PutSession(ses)
			})
			aDone <- err
		}()
		for range 100 {
			runtime.Gosched() // let A queue first
		}
		bDone := make(chan error, 1)
		go func() { // B: fails when it finds the session revoked
			_, err := s.Update(ctx, func(tx storage.Tx) error {
				ses, err := tx.Session(id)
				if err != nil {
					return err
				}
				if ses.Revoked() {
					return errSawRevoked
				}
				return nil
			})
			bDone <- err
		}()
		for range 100 {
			runtime.Gosched()
		}
		close(hold)
		bErr := <-bDone
		if !errors.Is(bErr, errSawRevoked) {
			close(release)
			<-aDone
			continue // B ran before A, or alone: not the case under test
		}
		// B was told the session is revoked. Is it, for everyone?
		var live bool
		if err := s.View(ctx, func(tx storage.ReadTx) error {
			ses, err := tx.Session(id)
			live = err == nil && !ses.Revoked()
			return err
		}); err != nil {
			t.Fatal(err)
		}
		close(release)
		if err := <-aDone; err != nil {
			t.Fatal(err)
		}
		if live {
			t.Fatalf("trial %d: an update failed with %q, seen in a write not committed: a View after its answer finds the session live", trial, errSawRevoked)
		}
		return
	}
	t.Fatal("A and B never ran in one batch, A first, in 200 trials")
}
