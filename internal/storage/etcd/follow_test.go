package etcd_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd/etcdtest"
)

// nextErr returns the error of the watcher's next change, failing the test
// if it delivers one; the minute only guards against a hang.
func nextErr(t *testing.T, w storage.Watcher) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c, err := w.Next(ctx)
	if err == nil {
		t.Fatalf("Next delivered change %d, want an error", c.Revision)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next still waiting after a minute")
	}
	return err
}

// A deleted log (the prefix wiped under a running store) fails both a
// watcher behind the hub's window, after the changes before the delete,
// and a watcher the hub serves at the head.
func TestWatchersSeeTheLogDeleted(t *testing.T) {
	defer etcd.SetHubSize(2)()
	m := etcdtest.Start(t, etcdtest.Config{UnsafeNoFsync: true})
	cli := etcdtest.Client(t, m)
	s := etcdtest.Open(t, etcd.Options{}, m)
	var revs []int64
	for _, id := range []string{"ban_1", "ban_2", "ban_3"} {
		revs = append(revs, mustUpdate(t, s, putBanEmit(testBan(id, "u"))))
	}
	behind, err := s.Watch(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer behind.Close()
	head, err := s.Watch(t.Context(), revs[2])
	if err != nil {
		t.Fatal(err)
	}
	defer head.Close()
	wantNothing(t, head) // served by the hub, waiting

	if _, err := cli.Delete(t.Context(), s.Prefix()+"/log"); err != nil {
		t.Fatal(err)
	}
	if err := nextErr(t, head); !errors.Is(err, storage.ErrCompacted) {
		t.Errorf("watcher at the head after the log was deleted: %v, want ErrCompacted", err)
	}
	// The hub has started over by now (head failed after it did): the
	// watcher behind must still not be left waiting on it.
	for _, want := range revs {
		if c := next(t, behind); c.Revision != want {
			t.Fatalf("behind: change %d, want %d", c.Revision, want)
		}
	}
	if err := nextErr(t, behind); !errors.Is(err, storage.ErrCompacted) {
		t.Errorf("watcher behind after the log was deleted: %v, want ErrCompacted", err)
	}
}

// An undecodable change fails the watchers that reach it; the hub starts
// over after it, so a watcher from there gets the next change.
func TestWatchersMeetAnUndecodableChange(t *testing.T) {
	m := etcdtest.Start(t, etcdtest.Config{UnsafeNoFsync: true})
	cli := etcdtest.Client(t, m)
	s := etcdtest.Open(t, etcd.Options{}, m)
	first := mustUpdate(t, s, putBanEmit(testBan("ban_1", "u")))
	w, err := s.Watch(t.Context(), first)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	wantNothing(t, w)

	put, err := cli.Put(t.Context(), s.Prefix()+"/log", "not a change")
	if err != nil {
		t.Fatal(err)
	}
	if err := nextErr(t, w); errors.Is(err, storage.ErrCompacted) || errors.Is(err, storage.ErrClosed) {
		t.Errorf("Next at an undecodable change: %v, want a decoding error", err)
	}

	after, err := s.Watch(t.Context(), put.Header.Revision)
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	rev := mustUpdate(t, s, putBanEmit(testBan("ban_2", "u")))
	if c := next(t, after); c.Revision != rev {
		t.Fatalf("after the undecodable change: change %d, want %d", c.Revision, rev)
	}
}
