package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// testTimeRoundTrip: a UTC time comes back as the same UTC time, to the
// nanosecond; a time in another zone comes back as the same instant.
func testTimeRoundTrip(t *testing.T, s storage.Store) {
	ses := newSession("ses_utc", "t1", "u1", "d1")
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	ses.RevokeTime = at(time.Hour + 123*time.Nanosecond).In(zone)
	update(t, s, func(tx storage.Tx) error { return tx.PutSession(ses) })
	view(t, s, func(tx storage.ReadTx) error {
		got, err := tx.Session(ses.ID)
		if err != nil {
			return err
		}
		for _, c := range []struct {
			name      string
			got, want time.Time
		}{
			{"CreateTime", got.CreateTime, ses.CreateTime},
			{"ExpireTime", got.ExpireTime, ses.ExpireTime},
			{"RefreshTime", got.RefreshTime, ses.RefreshTime},
			{"AccessExpireTime", got.AccessExpireTime, ses.AccessExpireTime},
		} {
			if !c.got.Equal(c.want) || c.got.Location() != time.UTC || c.got.Nanosecond() != c.want.Nanosecond() {
				t.Errorf("%s: got %v (%s), want %v (UTC)", c.name, c.got, c.got.Location(), c.want)
			}
		}
		if !got.RevokeTime.Equal(ses.RevokeTime) {
			t.Errorf("RevokeTime in another zone: got %v, want the instant %v", got.RevokeTime, ses.RevokeTime)
		}
		if !got.Revoked() {
			t.Errorf("zero times must stay zero and set ones set: %+v", got)
		}
		return nil
	})
	// A zero time stays zero.
	plain := newSession("ses_zero", "t1", "u1", "")
	update(t, s, func(tx storage.Tx) error { return tx.PutSession(plain) })
	view(t, s, func(tx storage.ReadTx) error {
		got, err := tx.Session(plain.ID)
		if err != nil {
			return err
		}
		if !got.RevokeTime.IsZero() || got.Revoked() {
			t.Errorf("zero RevokeTime came back as %v", got.RevokeTime)
		}
		return nil
	})
}

// testNotFound: every getter reports ErrNotFound, in View and in Update.
func testNotFound(t *testing.T, s storage.Store) {
	check := func(where string, tx storage.ReadTx) {
		_, err := tx.Session("ses_missing")
		wantNotFound(t, where+" Session", err)
		_, err = tx.RefreshToken([]byte("missing"))
		wantNotFound(t, where+" RefreshToken", err)
		_, err = tx.Ban("ban_missing")
		wantNotFound(t, where+" Ban", err)
		_, err = tx.APIKey("key_missing")
		wantNotFound(t, where+" APIKey", err)
	}
	view(t, s, func(tx storage.ReadTx) error {
		check("View:", tx)
		return nil
	})
	update(t, s, func(tx storage.Tx) error {
		check("Update:", tx)
		return nil
	})
	// A missing record next to existing ones is still missing.
	putSessions(t, s, newSession("ses_a", "t1", "u1", ""))
	view(t, s, func(tx storage.ReadTx) error {
		_, err := tx.Session("ses_")
		wantNotFound(t, "Session(prefix of an ID)", err)
		_, err = tx.Session("ses_ab")
		wantNotFound(t, "Session(extension of an ID)", err)
		return nil
	})
}

// testClose: after Close every operation fails with ErrClosed, and a
// watcher blocked in Next is released with ErrClosed.
func testClose(t *testing.T, s storage.Store) {
	rev := update(t, s, func(tx storage.Tx) error {
		return tx.Emit(banEvent(storage.EventBanCreated, newBan("ban_01", "t1", storage.SubjectUser, "alice")))
	})
	blocked, err := s.Watch(t.Context(), rev)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	idle, err := s.Watch(t.Context(), rev)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	result := make(chan error, 1)
	go func() {
		_, err := blocked.Next(waitCtx(t))
		result <- err
	}()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-result; !errors.Is(err, storage.ErrClosed) {
		t.Errorf("blocked Next after Close: got %v, want ErrClosed", err)
	}
	if _, err := idle.Next(t.Context()); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Next after Close: got %v, want ErrClosed", err)
	}
	ran := false
	if _, err := s.Update(t.Context(), func(storage.Tx) error { ran = true; return nil }); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Update after Close: got %v, want ErrClosed", err)
	}
	if ran {
		t.Errorf("Update after Close ran its function")
	}
	if err := s.View(t.Context(), func(storage.ReadTx) error { return nil }); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("View after Close: got %v, want ErrClosed", err)
	}
	if _, err := s.Watch(t.Context(), rev); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Watch after Close: got %v, want ErrClosed", err)
	}
	if err := s.Compact(t.Context(), rev); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Compact after Close: got %v, want ErrClosed", err)
	}
}
