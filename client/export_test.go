package client

import (
	"net/netip"
	"slices"
	"time"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// Test hooks: tests and benchmarks of package client_test build a mirror
// from a synthetic stream, without an authority.

// NewTestMirror returns a mirror without a connection that has applied a
// snapshot of snap at revision rev of store storeID.
func NewTestMirror(storeID string, rev int64, snap *pb.Snapshot, opts MirrorOptions) *Mirror {
	m := NewMirror(nil, opts)
	if err := m.Apply(&pb.WatchResponse{StoreId: storeID, Revision: rev, Payload: &pb.WatchResponse_Snapshot{Snapshot: snap}}); err != nil {
		panic(err)
	}
	return m
}

// Apply applies one message of the stream, as Run does.
func (m *Mirror) Apply(resp *pb.WatchResponse) error { return m.apply(resp, nil) }

// EndStream does what Run does when a stream ends: it drops the parts of
// an unfinished snapshot.
func (m *Mirror) EndStream() { m.dropParts() }

// Prune prunes now (by the mirror's clock), whatever the interval.
func (m *Mirror) Prune() {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	m.lastPrune = 0
	m.prune(m.clock().UnixNano())
}

// SetReconnectHook makes Run call f with each ended stream's error and
// the wait it chose before reconnecting. Call it before Run.
func (m *Mirror) SetReconnectHook(f func(err error, wait time.Duration)) { m.reconnectHook = f }

// HeldBan is a ban as the mirror holds it.
type HeldBan struct {
	BanID        string
	TenantID     string
	Subject      string // "user:ID", "device:ID" or "ip:PREFIX"
	Capabilities []string
	ExpireTime   time.Time
}

// HeldBans lists the bans the mirror holds, active at now, sorted by ID.
func (m *Mirror) HeldBans(now time.Time) []HeldBan {
	st := m.state.Load()
	if st == nil {
		return nil
	}
	var out []HeldBan
	add := func(subject string, b *banRec) {
		if !b.activeAt(now.UnixNano()) {
			return
		}
		h := HeldBan{BanID: b.banID(), TenantID: st.names.tenants[b.tenant], Subject: subject, ExpireTime: b.expireTime()}
		if b.ext != nil {
			h.Capabilities = b.ext.caps
		}
		out = append(out, h)
	}
	st.users.all(func(e *entry[string, banRec]) { add("user:"+e.k, &e.v) })
	st.devices.all(func(e *entry[string, banRec]) { add("device:"+e.k, &e.v) })
	st.ips.all(func(p netip.Prefix, b *banRec) { add("ip:"+p.String(), b) })
	slices.SortFunc(out, func(a, b HeldBan) int {
		switch {
		case a.BanID < b.BanID:
			return -1
		case a.BanID > b.BanID:
			return 1
		}
		return 0
	})
	return out
}

// WithBeforeApply returns o with a hook called with each message of the
// stream before the mirror applies it (MirrorOptions.beforeApply).
func WithBeforeApply(o MirrorOptions, f func(*pb.WatchResponse)) MirrorOptions {
	o.beforeApply = f
	return o
}

// StoreID is Stats().StoreID without the counting Stats does.
func (m *Mirror) StoreID() string {
	if st := m.state.Load(); st != nil {
		return st.storeID
	}
	return ""
}
