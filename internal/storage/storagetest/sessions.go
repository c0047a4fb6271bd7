package storagetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// sessionFixtures are inserted out of order. Tenants and users that are
// prefixes of each other ("t1", "t10"; "u1", "u10") catch indexes whose
// keys run into their neighbours'.
func sessionFixtures() []storage.Session {
	return []storage.Session{
		newSession("ses_07", "t1", "u2", "d1"),
		newSession("ses_03", "t2", "u1", "d1"),
		newSession("ses_01", "t1", "u1", "d1"),
		newSession("ses_09", "t1", "u10", "d10"),
		newSession("ses_05", "t1", "u1", ""),
		newSession("ses_02", "t1", "u2", ""),
		newSession("ses_08", "t10", "u1", "d1"),
		newSession("ses_04", "t1", "u1", "d2"),
		newSession("ses_06", "t2", "u2", "d2"),
	}
}

// sessionQueries covers every filter and their combinations.
var sessionQueries = []storage.SessionQuery{
	{},
	{TenantID: "t1"},
	{TenantID: "t2"},
	{TenantID: "t10"},
	{TenantID: "t1", UserID: "u1"},
	{TenantID: "t1", UserID: "u2"},
	{TenantID: "t1", UserID: "u10"},
	{TenantID: "t2", UserID: "u1"},
	{TenantID: "t1", DeviceID: "d1"},
	{TenantID: "t1", DeviceID: "d2"},
	{TenantID: "t1", DeviceID: "d10"},
	{TenantID: "t1", UserID: "u1", DeviceID: "d1"},
	{TenantID: "t1", UserID: "u1", DeviceID: "d2"},
	{TenantID: "t3"},
	{TenantID: "t1", UserID: "nobody"},
}

// matchSession is the reference semantics of SessionQuery (without After).
func matchSession(q storage.SessionQuery, s storage.Session) bool {
	return (q.TenantID == "" || s.TenantID == q.TenantID) &&
		(q.UserID == "" || s.UserID == q.UserID) &&
		(q.DeviceID == "" || s.DeviceID == q.DeviceID)
}

func putSessions(t *testing.T, s storage.Store, sessions ...storage.Session) int64 {
	t.Helper()
	return update(t, s, func(tx storage.Tx) error {
		for _, ses := range sessions {
			if err := tx.PutSession(ses); err != nil {
				return err
			}
		}
		return nil
	})
}

// checkSessionQueries checks every session query from every cursor.
func checkSessionQueries(t *testing.T, s storage.Store, all []storage.Session) {
	t.Helper()
	sessionListing.check(t, s, all, sessionQueries, cursors(all, sessionID, "ses_0", "ses_05x", "zzz"))
}

func testSessions(t *testing.T, newStore func(*testing.T) storage.Store) {
	t.Run("CreateGet", func(t *testing.T) {
		s := newStore(t)
		all := sessionFixtures()
		putSessions(t, s, all...)
		view(t, s, func(tx storage.ReadTx) error {
			for _, want := range all {
				got, err := tx.Session(want.ID)
				if err != nil {
					t.Errorf("Session(%s): %v", want.ID, err)
					continue
				}
				same(t, "Session("+want.ID+")", got, want, normSession)
			}
			return nil
		})
	})

	t.Run("Query", func(t *testing.T) {
		s := newStore(t)
		all := sessionFixtures()
		putSessions(t, s, all...)
		checkSessionQueries(t, s, all)
	})

	t.Run("Paging", func(t *testing.T) {
		s := newStore(t)
		all := sessionFixtures()
		putSessions(t, s, all...)
		sessionListing.checkPages(t, s, all, sessionQueries, []int{1, 2, 4})
	})

	t.Run("Replace", func(t *testing.T) {
		s := newStore(t)
		all := sessionFixtures()
		putSessions(t, s, all...)
		// Revoke ses_01: same indexed fields, new content.
		revoked := newSession("ses_01", "t1", "u1", "d1")
		revoked.RevokeTime = at(3 * time.Hour)
		revoked.RevokeReason = "banned"
		revoked.RevokedBy = "moderator"
		revoked.RefreshGeneration = 7
		// Move ses_04 to another tenant, user and device, and drop
		// ses_07's device: the old index entries must go.
		moved := newSession("ses_04", "t2", "u9", "d9")
		undeviced := newSession("ses_07", "t1", "u2", "")
		putSessions(t, s, revoked, moved, undeviced)
		for i, ses := range all {
			switch ses.ID {
			case revoked.ID:
				all[i] = revoked
			case moved.ID:
				all[i] = moved
			case undeviced.ID:
				all[i] = undeviced
			}
		}
		checkSessionQueries(t, s, all)
		for _, q := range []storage.SessionQuery{{TenantID: "t2", UserID: "u9"}, {TenantID: "t2", DeviceID: "d9"}} {
			sameList(t, fmt.Sprintf("Sessions(%+v)", q), sessionListing.get(t, s, q), []storage.Session{moved}, normSession, sessionID)
		}
		view(t, s, func(tx storage.ReadTx) error {
			got, err := tx.Session("ses_01")
			if err != nil {
				return err
			}
			same(t, "revoked session", got, revoked, normSession)
			if !got.Revoked() {
				t.Errorf("session read back is not revoked: %+v", got)
			}
			return nil
		})
	})

	t.Run("Delete", func(t *testing.T) {
		s := newStore(t)
		all := sessionFixtures()
		putSessions(t, s, all...)
		update(t, s, func(tx storage.Tx) error {
			for _, id := range []string{"ses_01", "ses_06"} {
				if err := tx.DeleteSession(id); err != nil {
					return err
				}
			}
			return nil
		})
		all = slices.DeleteFunc(all, func(ses storage.Session) bool { return ses.ID == "ses_01" || ses.ID == "ses_06" })
		view(t, s, func(tx storage.ReadTx) error {
			for _, id := range []string{"ses_01", "ses_06"} {
				_, err := tx.Session(id)
				wantNotFound(t, "Session("+id+") after DeleteSession", err)
			}
			return nil
		})
		checkSessionQueries(t, s, all)
	})

	t.Run("WriteWhileIterating", func(t *testing.T) {
		// The authority revokes a user's sessions by iterating over them
		// and writing each one back inside the same Update.
		s := newStore(t)
		all := sessionFixtures()
		putSessions(t, s, all...)
		q := storage.SessionQuery{TenantID: "t1", UserID: "u1"}
		want := sessionListing.expect(all, q)
		var seen []string
		update(t, s, func(tx storage.Tx) error {
			seen = seen[:0] // idempotent: the function may run again
			for ses, err := range tx.Sessions(q) {
				if err != nil {
					return err
				}
				seen = append(seen, ses.ID)
				ses.RevokeTime = at(5 * time.Hour)
				ses.RevokeReason = "user banned"
				if err := tx.PutSession(ses); err != nil {
					return err
				}
			}
			return nil
		})
		var wantIDs []string
		for _, ses := range want {
			wantIDs = append(wantIDs, ses.ID)
		}
		if !slices.Equal(seen, wantIDs) {
			t.Errorf("iterating while writing saw %q, want %q", seen, wantIDs)
		}
		for _, ses := range sessionListing.get(t, s, q) {
			if !ses.Revoked() || !ses.RevokeTime.Equal(at(5*time.Hour)) {
				t.Errorf("session %s not revoked: %+v", ses.ID, ses)
			}
		}
	})
}
