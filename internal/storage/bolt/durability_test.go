package bolt_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt/bolttest"
)

// TestReopen: everything committed survives a close, the store keeps its
// ID, and revisions continue where they stopped.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portcullis.db")
	s := bolttest.OpenPath(t, path, bolt.Options{})
	id := s.StoreID()
	if len(id) != 32 {
		t.Errorf("StoreID %q: want 32 hex digits", id)
	}
	ses := storage.Session{
		ID: "ses_1", TenantID: "t1", UserID: "alice", DeviceID: "d1",
		ClientIP: netip.MustParseAddr("203.0.113.9"), Attributes: map[string]string{"app": "web"},
		CreateTime: base, ExpireTime: base.Add(time.Hour), RefreshTime: base, AccessExpireTime: base.Add(15 * time.Minute),
	}
	key := storage.APIKey{ID: "key_1", Name: "bootstrap-admin", SecretHash: []byte{1, 2, 3}, Scopes: []string{"admin"}, CreateTime: base}
	revs := writeBans(t, s, "ban_", 3)
	last := mustUpdate(t, s, func(tx storage.Tx) error {
		if err := tx.PutSession(ses); err != nil {
			return err
		}
		if err := tx.PutAPIKey(key); err != nil {
			return err
		}
		return tx.Emit(storage.Event{Kind: storage.EventSessionRevoked, Time: base, Session: &ses})
	})
	revs = append(revs, last)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("file mode: %v, %v; want 0600", info.Mode(), err)
	}

	s = bolttest.OpenPath(t, path, bolt.Options{})
	if s.StoreID() != id {
		t.Errorf("StoreID after reopen: %s, want %s", s.StoreID(), id)
	}
	if got := revision(t, s); got != last {
		t.Errorf("revision after reopen: %d, want %d", got, last)
	}
	err := s.View(t.Context(), func(tx storage.ReadTx) error {
		got, err := tx.Session("ses_1")
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(got, ses) {
			t.Errorf("session after reopen:\n got %+v\nwant %+v", got, ses)
		}
		gotKey, err := tx.APIKey("key_1")
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(gotKey, key) {
			t.Errorf("API key after reopen:\n got %+v\nwant %+v", gotKey, key)
		}
		bans, err := collectAll(tx.Bans(storage.BanQuery{TenantID: "t1"}))
		if len(bans) != 3 {
			t.Errorf("%d bans after reopen, want 3", len(bans))
		}
		return err
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	// The log survived too, and new changes follow on.
	w, err := s.Watch(t.Context(), 0)
	if err != nil {
		t.Fatalf("Watch(0): %v", err)
	}
	defer w.Close()
	next := mustUpdate(t, s, putBanEmit(testBan("ban_new")))
	if next != last+1 {
		t.Errorf("first revision after reopen: %d, want %d", next, last+1)
	}
	for _, want := range append(revs, next) {
		c, err := w.Next(waitCtx(t))
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if c.Revision != want {
			t.Fatalf("change %d, want %d", c.Revision, want)
		}
	}
}

func collectAll[T any](seq func(func(T, error) bool)) ([]T, error) {
	var out []T
	for v, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}

// TestTimesStoredUTC: times in another zone come back as the same instant
// in UTC, in records and in events.
func TestTimesStoredUTC(t *testing.T) {
	s := bolttest.Open(t, bolt.Options{})
	zone := time.FixedZone("CET", 3600)
	b := testBan("ban_zone")
	b.CreateTime = base.In(zone)
	b.ExpireTime = base.Add(time.Hour).In(zone)
	mustUpdate(t, s, putBanEmit(b))
	err := s.View(t.Context(), func(tx storage.ReadTx) error {
		got, err := tx.Ban(b.ID)
		if err != nil {
			return err
		}
		for _, tm := range []time.Time{got.CreateTime, got.ExpireTime, got.LiftTime} {
			if tm.Location() != time.UTC {
				t.Errorf("time %v read back in %s, want UTC", tm, tm.Location())
			}
		}
		if !got.CreateTime.Equal(b.CreateTime) || got.CreateTime != base {
			t.Errorf("CreateTime %v, want %v", got.CreateTime, base)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Watch(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	c, err := w.Next(waitCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if e := c.Events[0]; e.Time != base || e.Ban.CreateTime != base {
		t.Errorf("event times %v, %v; want %v in UTC", e.Time, e.Ban.CreateTime, base)
	}
	// The caller's value was not modified.
	if b.CreateTime.Location() != zone {
		t.Errorf("Emit changed the caller's ban")
	}
}

func TestCloseTwice(t *testing.T) {
	s := bolttest.Open(t, bolt.Options{})
	for range 2 {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	if _, err := s.Update(context.Background(), putBanEmit(testBan("b"))); err == nil {
		t.Errorf("Update after Close succeeded")
	}
}
