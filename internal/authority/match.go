package authority

import (
	"net/netip"
	"slices"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// subjects are the identities one request is checked against.
type subjects struct {
	tenant string
	user   string
	device string
	addr   netip.Addr // zero when unknown
}

// eachActiveBan calls fn with every ban active at now that matches any of
// s, in the tenant or in "*": user bans, then device bans, then IP bans
// (the order in which a refusal names its reason). fn returns false to
// stop.
func eachActiveBan(tx storage.ReadTx, s subjects, now time.Time, fn func(storage.Ban) bool) error {
	tenants := []string{s.tenant, storage.AllTenants}
	exact := func(kind storage.SubjectKind, value string) (bool, error) {
		for _, t := range tenants {
			for b, err := range tx.Bans(storage.BanQuery{TenantID: t, Kind: kind, Value: value}) {
				if err != nil {
					return false, err
				}
				if b.ActiveAt(now) && !fn(b) {
					return false, nil
				}
			}
		}
		return true, nil
	}
	if s.user != "" {
		if more, err := exact(storage.SubjectUser, s.user); err != nil || !more {
			return err
		}
	}
	if s.device != "" {
		if more, err := exact(storage.SubjectDevice, s.device); err != nil || !more {
			return err
		}
	}
	if s.addr.IsValid() {
		// Every prefix that contains the address, longest first: the cost is
		// bounded by the address length, not by the number of IP bans.
		for bits := s.addr.BitLen(); bits >= 1; bits-- {
			p, _ := s.addr.Prefix(bits)
			if more, err := exact(storage.SubjectIP, p.String()); err != nil || !more {
				return err
			}
		}
	}
	return nil
}

// lastsLonger reports whether ban x ends after ban y (permanent is
// longest), so that a refusal names the ban that will hold longest.
func lastsLonger(x, y storage.Ban) bool {
	switch {
	case x.ExpireTime.IsZero():
		return !y.ExpireTime.IsZero()
	case y.ExpireTime.IsZero():
		return false
	default:
		return x.ExpireTime.After(y.ExpireTime)
	}
}

// refusal returns the ban that refuses a request from s needing capability
// ("" for none), or nil. Full bans come first, in the order user, device,
// IP; then bans restricting the capability.
func refusal(tx storage.ReadTx, s subjects, capability string, now time.Time) (*BanError, error) {
	var full, restricted *storage.Ban
	err := eachActiveBan(tx, s, now, func(b storage.Ban) bool {
		switch {
		case b.Full():
			if full == nil || (full.Kind == b.Kind && lastsLonger(b, *full)) {
				full = &b
			}
		case capability != "" && slices.Contains(b.Capabilities, capability):
			if restricted == nil || lastsLonger(b, *restricted) {
				restricted = &b
			}
		}
		return true
	})
	switch {
	case err != nil:
		return nil, err
	case full != nil:
		return banError(*full, ""), nil
	case restricted != nil:
		return banError(*restricted, capability), nil
	}
	return nil, nil
}
