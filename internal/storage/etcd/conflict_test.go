package etcd_test

import (
	"errors"
	"strconv"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd/etcdtest"
)

// An update whose reads another replica changes before every commit gives
// up after Options.MaxAttempts with an error that is storage.ErrConflict
// (the server answers Aborted, reason CONFLICT: retrying is safe), and
// writes nothing. The other replica writes from inside the function,
// between its read and its commit, so the interleaving is deterministic.
func TestUpdateGivesUpWithConflict(t *testing.T) {
	m := etcdtest.Start(t, etcdtest.Config{})
	prefix := etcdtest.NewPrefix()
	const attempts = 2
	a := etcdtest.Open(t, etcd.Options{Prefix: prefix, MaxAttempts: attempts}, m)
	b := etcdtest.Open(t, etcd.Options{Prefix: prefix}, m)
	mustUpdate(t, a, func(tx storage.Tx) error { return tx.PutBan(testBan("ban_c", "u")) })

	runs := 0
	_, err := a.Update(t.Context(), func(tx storage.Tx) error {
		runs++
		ban, err := tx.Ban("ban_c")
		if err != nil {
			return err
		}
		// Another replica changes what this run read.
		mustUpdate(t, b, func(tx storage.Tx) error {
			other := testBan("ban_c", "u")
			other.Reason = "other-" + strconv.Itoa(runs)
			return tx.PutBan(other)
		})
		ban.Reason = "mine"
		return tx.PutBan(ban)
	})
	if !errors.Is(err, storage.ErrConflict) || !errors.Is(err, etcd.ErrTooManyAttempts) {
		t.Fatalf("Update against a writer that wins every race: %v, want storage.ErrConflict", err)
	}
	if runs != attempts {
		t.Errorf("the function ran %d times, want MaxAttempts = %d", runs, attempts)
	}
	got, err := getBan(t, a, "ban_c")
	if err != nil {
		t.Fatal(err)
	}
	if want := "other-" + strconv.Itoa(attempts); got.Reason != want {
		t.Errorf("after the conflict the ban's reason is %q, want the other replica's %q: the update must write nothing", got.Reason, want)
	}
}
