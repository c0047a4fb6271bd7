package authoritytest

import (
	"cmp"
	"context"
	"fmt"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

// SeedBans writes n bans, ban(0) to ban(n-1), straight into the store in
// one transaction: a test-only fast path for volume (the 50k bans of a
// large snapshot take about a second here, and far longer through
// CreateBan, one durable commit each). It bypasses the authority's rules: nothing is
// validated beyond what follows, no session is revoked, no audit record
// is written, and no event announces the bans (one change of 50k events
// would not fit in a Watch message): the revision does not move, and the
// bans reach mirrors with their next snapshot. Seed before starting the
// mirrors that must hold them; the API (GetBan, ListBans, CreateSession's
// ban check) sees them at once.
//
// Of each ban it keeps BanId (required, of the authority's form "ban_" +
// 26 characters, and new: a seeded ban replaces one with the same ID),
// TenantId (default "public"; "*" for all tenants), Subject (a user,
// device or IP, which must be what CreateBan accepts: an address or a
// prefix without host bits), Capabilities, Reason, Policy, CreatedBy
// (default "authoritytest"), CreateTime (default: the clock's now) and ExpireTime
// (unset: permanent). The lift fields and State are ignored: a seeded ban
// is active until it expires.
//
// On an etcd store, one transaction holds at most etcd's --max-txn-ops
// writes (128 by default), a few per ban: seed more in several calls.
func (a *Authority) SeedBans(n int, ban func(i int) *pb.Ban) {
	run := a.running("SeedBans")
	now := a.clock.Now()
	bans := make([]storage.Ban, n)
	for i := range bans {
		b, err := storedBan(ban(i))
		if err != nil {
			a.fail("authoritytest: SeedBans: ban %d: %v", i, err)
			return
		}
		if b.CreateTime.IsZero() {
			b.CreateTime = now
		}
		bans[i] = b
	}
	_, err := run.store.Update(context.Background(), func(tx storage.Tx) error {
		for _, b := range bans {
			if err := tx.PutBan(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		a.fail("authoritytest: SeedBans: %v", err)
	}
}

// storedBan is b as the store keeps it.
func storedBan(b *pb.Ban) (storage.Ban, error) {
	if b.GetBanId() == "" {
		return storage.Ban{}, fmt.Errorf("no BanId")
	}
	s := storage.Ban{
		ID: b.GetBanId(), TenantID: b.GetTenantId(), Capabilities: b.GetCapabilities(),
		Reason: b.GetReason(), Policy: b.GetPolicy(), CreatedBy: b.GetCreatedBy(),
	}
	s.TenantID = cmp.Or(s.TenantID, "public")
	s.CreatedBy = cmp.Or(s.CreatedBy, "authoritytest")
	if b.GetCreateTime() != nil {
		s.CreateTime = b.GetCreateTime().AsTime()
	}
	if b.GetExpireTime() != nil {
		s.ExpireTime = b.GetExpireTime().AsTime()
	}
	switch k := b.GetSubject().GetKind().(type) {
	case *pb.Subject_UserId:
		s.Kind, s.Value = storage.SubjectUser, k.UserId
	case *pb.Subject_DeviceId:
		s.Kind, s.Value = storage.SubjectDevice, k.DeviceId
	case *pb.Subject_Ip:
		p, err := authority.ParsePrefix("subject.ip", k.Ip)
		if err != nil {
			return storage.Ban{}, err
		}
		s.Kind, s.Value = storage.SubjectIP, p.String()
	default:
		return storage.Ban{}, fmt.Errorf("no subject")
	}
	if s.Value == "" {
		return storage.Ban{}, fmt.Errorf("empty subject")
	}
	return s, nil
}
