package etcd_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd/etcdtest"
)

// awaitPresence reads maps from ch until one equals want, failing at ctx's
// deadline with the last map seen.
func awaitPresence(ctx context.Context, t *testing.T, ch <-chan map[string][]byte, want map[string]string) {
	t.Helper()
	var last map[string][]byte
	for {
		select {
		case m, ok := <-ch:
			if !ok {
				t.Fatalf("presence channel closed; last map %q, want %q", last, want)
			}
			last = m
			if maps.EqualFunc(m, want, func(a []byte, b string) bool { return string(a) == b }) {
				return
			}
		case <-ctx.Done():
			t.Fatalf("presence never became %q; last map %q", want, last)
		}
	}
}

func TestPresence(t *testing.T) {
	m := etcdtest.Start(t, etcdtest.Config{UnsafeNoFsync: true})

	// Two replicas see each other's values, updates replace them, and
	// closing a store removes its values at once (no TTL to wait out: the
	// TTL here is far longer than the deadline).
	t.Run("PublishWatchClose", func(t *testing.T) {
		prefix := etcdtest.NewPrefix()
		a := etcdtest.Open(t, etcd.Options{Prefix: prefix, PresenceTTL: time.Hour}, m)
		b := etcdtest.Open(t, etcd.Options{Prefix: prefix, PresenceTTL: time.Hour}, m)
		ctx := waitCtx(t)
		ch, err := a.WatchPresence(ctx)
		if err != nil {
			t.Fatal(err)
		}
		awaitPresence(ctx, t, ch, map[string]string{})
		if err := a.PublishPresence(ctx, "a", []byte("1")); err != nil {
			t.Fatal(err)
		}
		if err := b.PublishPresence(ctx, "b", []byte("2")); err != nil {
			t.Fatal(err)
		}
		awaitPresence(ctx, t, ch, map[string]string{"a": "1", "b": "2"})
		if err := b.PublishPresence(ctx, "b", []byte("3")); err != nil {
			t.Fatal(err)
		}
		awaitPresence(ctx, t, ch, map[string]string{"a": "1", "b": "3"})

		// A watch started now gets the whole map at once.
		ch2, err := b.WatchPresence(ctx)
		if err != nil {
			t.Fatal(err)
		}
		awaitPresence(ctx, t, ch2, map[string]string{"a": "1", "b": "3"})

		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		awaitPresence(ctx, t, ch, map[string]string{"a": "1"})
		// b's own watch ends with b (after any map it still held).
		for open := true; open; {
			select {
			case _, open = <-ch2:
			case <-ctx.Done():
				t.Fatal("b's presence channel still open after Close")
			}
		}
		if err := b.PublishPresence(ctx, "b", []byte("4")); !errors.Is(err, storage.ErrClosed) {
			t.Errorf("PublishPresence after Close: %v, want ErrClosed", err)
		}
	})

	// A replica that stops renewing (its etcd client gone, the store never
	// closed) disappears when its lease expires.
	t.Run("Expiry", func(t *testing.T) {
		prefix := etcdtest.NewPrefix()
		a := etcdtest.Open(t, etcd.Options{Prefix: prefix}, m)
		cli, err := clientv3.New(clientv3.Config{Endpoints: etcdtest.Endpoints(m), DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx := waitCtx(t)
		b, err := etcd.New(ctx, cli, etcd.Options{Prefix: prefix, PresenceTTL: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ch, err := a.WatchPresence(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.PublishPresence(ctx, "b", []byte("x")); err != nil {
			t.Fatal(err)
		}
		awaitPresence(ctx, t, ch, map[string]string{"b": "x"})
		cli.Close() // no revoke: only the TTL can remove it
		awaitPresence(ctx, t, ch, map[string]string{})
		b.Close()
	})

	// A lease lost while the store is open (revoked here; expired after a
	// partition in real life) is replaced, and the values put again.
	t.Run("LeaseLost", func(t *testing.T) {
		a := etcdtest.Open(t, etcd.Options{}, m)
		ctx := waitCtx(t)
		ch, err := a.WatchPresence(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.PublishPresence(ctx, "a", []byte("1")); err != nil {
			t.Fatal(err)
		}
		awaitPresence(ctx, t, ch, map[string]string{"a": "1"})
		resp, err := a.Client().Get(ctx, a.Prefix()+"/presence/a")
		if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease == 0 {
			t.Fatalf("presence key: %v, %v; want one key under a lease", resp, err)
		}
		old := resp.Kvs[0].Lease
		if _, err := a.Client().Revoke(ctx, clientv3.LeaseID(old)); err != nil {
			t.Fatal(err)
		}
		// The map with "a" was taken already: this one follows the revoke
		// (the deletion may be coalesced into it).
		awaitPresence(ctx, t, ch, map[string]string{"a": "1"})
		resp, err = a.Client().Get(ctx, a.Prefix()+"/presence/a")
		if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease == 0 || resp.Kvs[0].Lease == old {
			t.Fatalf("presence key after the revoke: %v, %v; want it under a new lease", resp, err)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		a := etcdtest.Open(t, etcd.Options{}, m)
		ctx := waitCtx(t)
		if err := a.PublishPresence(ctx, "", []byte("1")); err == nil {
			t.Error("empty id accepted")
		}
		big := strings.Repeat("x", storage.MaxPresenceValue+1)
		if err := a.PublishPresence(ctx, "a", []byte(big)); err == nil {
			t.Error("oversized value accepted")
		}
		if err := a.PublishPresence(ctx, "a", []byte(big[1:])); err != nil {
			t.Errorf("value of MaxPresenceValue bytes: %v", err)
		}
	})
}
