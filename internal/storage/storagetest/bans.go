package storagetest

import (
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

func banFixtures() []storage.Ban {
	restricted := newBan("ban_07", "t1", storage.SubjectUser, "alice")
	restricted.Capabilities = []string{"post", "comment"}
	permanent := newBan("ban_06", storage.AllTenants, storage.SubjectUser, "bob")
	permanent.ExpireTime = time.Time{}
	return []storage.Ban{
		newBan("ban_05", "t1", storage.SubjectDevice, "d1"),
		newBan("ban_02", storage.AllTenants, storage.SubjectIP, "203.0.113.0/24"),
		permanent,
		newBan("ban_01", "t1", storage.SubjectUser, "alice"),
		newBan("ban_08", "t1", storage.SubjectUser, "alicex"),
		newBan("ban_04", "t2", storage.SubjectUser, "alice"),
		restricted,
		newBan("ban_03", "t1", storage.SubjectIP, "198.51.100.7/32"),
		newBan("ban_09", "t10", storage.SubjectUser, "alice"),
		newBan("ban_10", "t1", storage.SubjectIP, "2001:db8::/32"),
	}
}

var banQueries = []storage.BanQuery{
	{},
	{TenantID: "t1"},
	{TenantID: "t2"},
	{TenantID: "t10"},
	{TenantID: storage.AllTenants},
	{TenantID: "t1", Kind: storage.SubjectUser},
	{TenantID: "t1", Kind: storage.SubjectIP},
	{TenantID: "t1", Kind: storage.SubjectDevice},
	{TenantID: "t1", Kind: storage.SubjectUser, Value: "alice"},
	{TenantID: "t1", Kind: storage.SubjectUser, Value: "alicex"},
	{TenantID: "t1", Kind: storage.SubjectUser, Value: "nobody"},
	{TenantID: "t1", Kind: storage.SubjectIP, Value: "198.51.100.7/32"},
	{TenantID: storage.AllTenants, Kind: storage.SubjectUser},
	{TenantID: storage.AllTenants, Kind: storage.SubjectUser, Value: "bob"},
	{TenantID: storage.AllTenants, Kind: storage.SubjectIP, Value: "203.0.113.0/24"},
	{TenantID: "t3"},
}

// matchBan is the reference semantics of BanQuery (without After): the
// tenant "*" selects only bans stored with tenant "*".
func matchBan(q storage.BanQuery, b storage.Ban) bool {
	return (q.TenantID == "" || b.TenantID == q.TenantID) &&
		(q.Kind == "" || b.Kind == q.Kind) &&
		(q.Value == "" || b.Value == q.Value)
}

func putBans(t *testing.T, s storage.Store, bans ...storage.Ban) {
	t.Helper()
	update(t, s, func(tx storage.Tx) error {
		for _, b := range bans {
			if err := tx.PutBan(b); err != nil {
				return err
			}
		}
		return nil
	})
}

// checkBanQueries checks every ban query from every cursor.
func checkBanQueries(t *testing.T, s storage.Store, all []storage.Ban) {
	t.Helper()
	banListing.check(t, s, all, banQueries, cursors(all, banID, "ban_0", "ban_05x", "zzz"))
}

func testBans(t *testing.T, newStore func(*testing.T) storage.Store) {
	t.Run("CreateGet", func(t *testing.T) {
		s := newStore(t)
		all := banFixtures()
		putBans(t, s, all...)
		view(t, s, func(tx storage.ReadTx) error {
			for _, want := range all {
				got, err := tx.Ban(want.ID)
				if err != nil {
					t.Errorf("Ban(%s): %v", want.ID, err)
					continue
				}
				same(t, "Ban("+want.ID+")", got, want, normBan)
			}
			return nil
		})
	})

	t.Run("Query", func(t *testing.T) {
		s := newStore(t)
		all := banFixtures()
		putBans(t, s, all...)
		checkBanQueries(t, s, all)
	})

	t.Run("Paging", func(t *testing.T) {
		s := newStore(t)
		all := banFixtures()
		putBans(t, s, all...)
		banListing.checkPages(t, s, all, banQueries, []int{1, 3})
	})

	t.Run("LiftAndReplace", func(t *testing.T) {
		s := newStore(t)
		all := banFixtures()
		putBans(t, s, all...)
		lifted := newBan("ban_01", "t1", storage.SubjectUser, "alice")
		lifted.LiftTime = at(2 * time.Hour)
		lifted.LiftedBy = "admin"
		lifted.LiftReason = "appeal granted"
		// Indexed fields changed: the old entries must go.
		moved := newBan("ban_03", storage.AllTenants, storage.SubjectIP, "198.51.100.0/24")
		putBans(t, s, lifted, moved)
		for i, b := range all {
			switch b.ID {
			case lifted.ID:
				all[i] = lifted
			case moved.ID:
				all[i] = moved
			}
		}
		checkBanQueries(t, s, all)
		view(t, s, func(tx storage.ReadTx) error {
			got, err := tx.Ban("ban_01")
			if err != nil {
				return err
			}
			same(t, "lifted ban", got, lifted, normBan)
			if !got.Lifted() || got.ActiveAt(at(3*time.Hour)) {
				t.Errorf("ban read back is not lifted: %+v", got)
			}
			return nil
		})
	})
}
