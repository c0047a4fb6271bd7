package client

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base32"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// state is everything a check needs, as of one revision. It is immutable
// once published through Mirror.state (an atomic.Pointer): a check loads
// it once and reads it without locks. Each applied change derives a new
// state that shares all it did not touch (an index copies one shard per
// update), so applying one event to a 100k-ban state costs microseconds,
// not a copy of 100k entries.
type state struct {
	storeID string
	rev     int64

	keys   map[string]verificationKey // small: copied whole on change
	keyGen uint64                     // changes when a key goes away: cached tokens verify again
	// issuers are the trusted external issuers by URL (external.go); small:
	// copied whole on change, which also moves keyGen.
	issuers map[string]*extIssuer

	names   *interner
	users   index[string, banRec] // by user ID, any tenant
	devices index[string, banRec] // by device ID, any tenant
	ips     *ipTable
	revoked index[string, int64] // session ID -> its access_expire_time (unix ns)
	// jtiRevoked counts (at least) the revocations of external tokens by
	// jti in revoked: while it is 0, a check skips that lookup.
	jtiRevoked int
	nBans      int

	// nextExpiry is no later than the earliest expiry among the temporary
	// bans, revoked sessions and retiring keys held (0: none): the prune
	// has nothing to do before it.
	nextExpiry int64
}

// verificationKey is a public key and the time it stops verifying.
type verificationKey struct {
	pub   ed25519.PublicKey
	until int64 // unix ns; 0 while the key signs
}

// banRec is one ban as a check needs it, 40 bytes, stored in place in its
// subject's index (several bans on one subject are several entries).
type banRec struct {
	tenant uint32   // interner index; 0 = "*"
	id     [16]byte // the ID's 128 bits, unless ext.id is set
	expire int64    // unix ns; 0 = permanent
	ext    *banExt  // nil for a full ban with a compact ID (most bans)
}

// banExt holds what most bans do not have. Those that differ only in
// capabilities share one (interned).
type banExt struct {
	id   string   // the ID when it does not have the authority's form
	caps []string // sorted; empty = full ban
}

func (b *banRec) full() bool { return b.ext == nil || len(b.ext.caps) == 0 }

func (b *banRec) activeAt(now int64) bool { return b.expire == 0 || now < b.expire }

func (b *banRec) restricts(capability string) bool {
	return b.ext != nil && slices.Contains(b.ext.caps, capability)
}

func (b *banRec) banID() string {
	if b.ext != nil && b.ext.id != "" {
		return b.ext.id
	}
	return banIDPrefix + idEncoding.EncodeToString(b.id[:])
}

func (b *banRec) expireTime() time.Time {
	if b.expire == 0 {
		return time.Time{}
	}
	return time.Unix(0, b.expire).UTC()
}

// idEncoding is the authority's ID text: "ban_" + 26 characters of this
// base32 of 128 bits. IDs of that form are kept as their 16 bytes (saving
// 32 bytes a ban); any other form is kept as text. The client does not
// depend on the form: it only saves memory when it matches.
var idEncoding = base32.NewEncoding(idAlphabet).WithPadding(base32.NoPadding)

const idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

const banIDPrefix = "ban_"

func compactID(id string) ([16]byte, bool) {
	var b [16]byte
	if len(id) != len(banIDPrefix)+26 || id[:len(banIDPrefix)] != banIDPrefix {
		return b, false
	}
	// 26 characters of 5 bits: the 128 bits, then 2 that are 0 in the
	// canonical text (the one idEncoding makes of the bytes), which alone
	// is compact: banID gives it back.
	var acc uint32
	bits, j := 0, 0
	for i := len(banIDPrefix); i < len(id); i++ {
		v := idValues[id[i]]
		if v == 0xff {
			return b, false
		}
		acc = acc<<5 | uint32(v)
		if bits += 5; bits >= 8 {
			bits -= 8
			b[j] = byte(acc >> bits)
			j++
		}
	}
	return b, acc&(1<<bits-1) == 0
}

// idValues maps a character of idEncoding's alphabet to its value, any
// other byte to 0xff.
var idValues = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range idAlphabet {
		t[c] = byte(i)
	}
	return t
}()

// interner shares what many bans repeat: tenant IDs (a ban stores a
// 4-byte index) and capability sets. It only grows (by copy) while a
// state lineage lives; a reset starts a new one.
type interner struct {
	tenantIdx map[string]uint32
	tenants   []string
	caps      map[string]*banExt // by the capabilities joined with "\x00"
}

const (
	allTenants   = "*"
	noSuchTenant = math.MaxUint32
)

func newInterner() *interner {
	return &interner{tenantIdx: map[string]uint32{allTenants: 0}, tenants: []string{allTenants}, caps: map[string]*banExt{}}
}

// tenant returns the index of a tenant, or noSuchTenant.
func (t *interner) tenant(name string) uint32 {
	if i, ok := t.tenantIdx[name]; ok {
		return i
	}
	return noSuchTenant
}

func (t *interner) clone() *interner {
	c := &interner{tenantIdx: make(map[string]uint32, len(t.tenantIdx)+1), tenants: slices.Clip(t.tenants),
		caps: make(map[string]*banExt, len(t.caps))}
	for k, v := range t.tenantIdx {
		c.tenantIdx[k] = v
	}
	for k, v := range t.caps {
		c.caps[k] = v
	}
	return c
}

// unixNanos converts a timestamp; unset is 0.
func unixNanos(ts *timestamppb.Timestamp) int64 {
	if ts == nil {
		return 0
	}
	return timeNanos(ts.AsTime())
}

// timeNanos is t.UnixNano, clamped to what int64 nanoseconds hold (years
// 1678 to 2262) rather than overflowing.
func timeNanos(t time.Time) int64 {
	switch {
	case t.Year() >= 2262:
		return math.MaxInt64
	case t.Year() < 1678:
		return math.MinInt64 + 1
	}
	return t.UnixNano()
}

// subjectKind is the index a ban lives in.
type subjectKind int

const (
	subjectNone subjectKind = iota
	subjectUser
	subjectDevice
	subjectIP
)

// banSubject returns where a ban is indexed. ok is false for a ban the
// mirror cannot use (no subject, an unparsable prefix): it is skipped.
func banSubject(b *pb.Ban) (kind subjectKind, value string, prefix netip.Prefix, ok bool) {
	switch s := b.GetSubject().GetKind().(type) {
	case *pb.Subject_UserId:
		return subjectOf(wireSubjectUserID, s.UserId)
	case *pb.Subject_DeviceId:
		return subjectOf(wireSubjectDeviceID, s.DeviceId)
	case *pb.Subject_Ip:
		return subjectOf(wireSubjectIP, s.Ip)
	}
	return subjectNone, "", netip.Prefix{}, false
}

// subjectOf is banSubject of the Subject whose field num (wireSubject*; 0:
// none) is v.
func subjectOf(num protowire.Number, v string) (kind subjectKind, value string, prefix netip.Prefix, ok bool) {
	switch num {
	case wireSubjectUserID:
		return subjectUser, v, netip.Prefix{}, v != ""
	case wireSubjectDeviceID:
		return subjectDevice, v, netip.Prefix{}, v != ""
	case wireSubjectIP:
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, err := netip.ParseAddr(v)
			if err != nil {
				return subjectNone, "", netip.Prefix{}, false
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			// An IPv4-mapped prefix ("::ffff:10.0.0.0/104"): the authority
			// refuses those; keep its IPv4 meaning, as clients are looked
			// up unmapped.
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		p = netip.PrefixFrom(p.Addr().WithZone(""), p.Bits()).Masked()
		return subjectIP, "", p, p.Bits() > 0
	}
	return subjectNone, "", netip.Prefix{}, false
}

// builder derives a state: either a fresh one (a snapshot, built in place
// and frozen) or a copy-on-write child of a published one (a change).
type builder struct {
	s       *state
	inPlace bool
	seen    banIDSet // ban IDs added, while building in place
	names   bool     // s.names is already this builder's copy
	keys    arena    // copies of the keys indexed, while building in place

	// The last tenant looked up: the bans of a snapshot mostly share one.
	lastTenant    string
	lastTenantIdx uint32
}

// banIDSet is the set of ban IDs a snapshot builder has indexed. The
// authority sends bans in ascending ID order, and an ID greater than every
// one before it is new: while compact IDs (banRec.id) come in order, the
// set only remembers the last one. The first out of order builds the set
// of them (all, from the indexes) and from then on it is a map of their
// 16 bytes. IDs of another form are kept in a map of strings.
type banIDSet struct {
	last    [16]byte              // the greatest compact ID, while they come in order
	compact map[[16]byte]struct{} // nil while they come in order
	other   map[string]struct{}
}

// addBanID adds an ID to b.seen, reporting false when it was there.
func (b *builder) addBanID(id string, c [16]byte, compact bool) bool {
	s := &b.seen
	if !compact {
		if s.other == nil {
			s.other = map[string]struct{}{}
		}
		n := len(s.other)
		s.other[id] = struct{}{}
		return len(s.other) > n
	}
	if s.compact == nil {
		if bytes.Compare(c[:], s.last[:]) > 0 {
			s.last = c
			return true
		}
		s.compact = make(map[[16]byte]struct{}, b.s.nBans)
		b.allBans(func(r *banRec) {
			if r.ext == nil || r.ext.id == "" {
				s.compact[r.id] = struct{}{}
			}
		})
	}
	n := len(s.compact)
	s.compact[c] = struct{}{}
	return len(s.compact) > n
}

// allBans calls fn with every ban of the state.
func (b *builder) allBans(fn func(*banRec)) {
	s := b.s
	s.users.all(func(e *entry[string, banRec]) { fn(&e.v) })
	s.devices.all(func(e *entry[string, banRec]) { fn(&e.v) })
	s.ips.all(func(_ netip.Prefix, r *banRec) { fn(r) })
}

// snapshotBuilder builds the state of a snapshot part by part, as the
// parts arrive (snapshotParts): the last part only adds its own share and
// freezes the indexes, and each part's messages are garbage once added.
// Nobody reads the state before finish.
type snapshotBuilder struct {
	b       builder
	revoked map[string]bool // session IDs added
}

func newSnapshotBuilder(storeID string, rev int64) *snapshotBuilder {
	s := &state{storeID: storeID, rev: rev, keys: map[string]verificationKey{}, names: newInterner(), ips: &ipTable{}}
	return &snapshotBuilder{
		b:       builder{s: s, inPlace: true, names: true},
		revoked: map[string]bool{},
	}
}

// addPart indexes one part's keys, bans and revoked sessions (a ban or
// session already added, by ID, is ignored). wire holds the part's bans
// when the watch codec read them apart (snap then has none; nil
// otherwise): the keys come first, then the bans, then the revoked
// sessions, as the authority sends them.
func (sb *snapshotBuilder) addPart(snap *pb.Snapshot, wire []wireBan) {
	b := &sb.b
	for _, k := range snap.GetKeys() {
		b.putKey(k)
	}
	for _, is := range snap.GetIssuers() {
		b.putIssuer(is)
	}
	for _, x := range snap.GetBans() {
		b.addBan(x)
	}
	for i := range wire {
		b.addWireBan(&wire[i])
	}
	for _, r := range snap.GetRevokedSessions() {
		if k := revokedKey(r); !sb.revoked[k] {
			sb.revoked[k] = true
			b.revoke(r)
		}
	}
}

// finish freezes the state. The key generation continues from prev so
// that tokens cached before the reset verify again against the new keys.
func (sb *snapshotBuilder) finish(prevKeyGen uint64) *state {
	s := sb.b.s
	s.keyGen += prevKeyGen + 1
	s.users.freeze()
	s.devices.freeze()
	s.revoked.freeze()
	s.ips.freeze()
	return s
}

// child starts a copy-on-write change of s.
func (s *state) child() builder {
	c := *s
	return builder{s: &c}
}

func (b *builder) noteExpiry(t int64) {
	if t != 0 && (b.s.nextExpiry == 0 || t < b.s.nextExpiry) {
		b.s.nextExpiry = t
	}
}

// ownNames makes s.names this builder's own before it grows.
func (b *builder) ownNames() *interner {
	if !b.names {
		b.s.names, b.names = b.s.names.clone(), true
	}
	return b.s.names
}

func (b *builder) tenant(name string) uint32 {
	if b.lastTenant == name && b.lastTenant != "" {
		return b.lastTenantIdx
	}
	i := b.s.names.tenant(name)
	if i == noSuchTenant {
		n := b.ownNames()
		i = uint32(len(n.tenants))
		name = strings.Clone(name) // kept: not a view into a message (wireBan)
		n.tenantIdx[name] = i
		n.tenants = append(n.tenants, name)
	}
	b.lastTenant, b.lastTenantIdx = name, i
	return i
}

func (b *builder) ext(id string, caps []string) *banExt {
	if id == "" && len(caps) == 0 {
		return nil
	}
	caps = slices.Compact(slices.Sorted(slices.Values(caps)))
	if id != "" {
		return &banExt{id: id, caps: caps}
	}
	key := strings.Join(caps, "\x00")
	if e, ok := b.s.names.caps[key]; ok {
		return e
	}
	e := &banExt{caps: caps}
	b.ownNames().caps[key] = e
	return e
}

func (b *builder) putKey(k *pb.VerificationKey) {
	if len(k.GetPublicKey()) != ed25519.PublicKeySize {
		return // not an Ed25519 key: it can verify nothing
	}
	vk := verificationKey{pub: ed25519.PublicKey(slices.Clone(k.GetPublicKey())), until: unixNanos(k.GetVerifyUntil())}
	if old, ok := b.s.keys[k.GetKeyId()]; ok && !old.pub.Equal(vk.pub) {
		b.s.keyGen++ // the same kid with another key: forget what the old one verified
	}
	if !b.inPlace {
		keys := make(map[string]verificationKey, len(b.s.keys)+1)
		for id, v := range b.s.keys {
			keys[id] = v
		}
		b.s.keys = keys
	}
	b.s.keys[k.GetKeyId()] = vk
	b.noteExpiry(vk.until)
}

// addBan indexes a ban (one already held, by ID, is ignored).
func (b *builder) addBan(x *pb.Ban) {
	kind, value, prefix, ok := banSubject(x)
	b.addBanFields(x.GetBanId(), x.GetTenantId(), kind, value, prefix, ok, x.GetCapabilities(), unixNanos(x.GetExpireTime()))
}

// addWireBan indexes a ban read by the watch codec (snapwire.go), as
// addBan does the same ban decoded as a message.
func (b *builder) addWireBan(x *wireBan) {
	kind, value, prefix, ok := subjectOf(x.subject, x.value)
	b.addBanFields(x.id, x.tenant, kind, value, prefix, ok, x.caps, x.expire)
}

// addBanFields is addBan of a ban's fields. The strings may point into a
// received message (wireBan): what the state keeps of them is copied.
func (b *builder) addBanFields(id, tenant string, kind subjectKind, value string, prefix netip.Prefix, ok bool, caps []string, expire int64) {
	if !ok || id == "" {
		return
	}
	c, compact := compactID(id)
	if b.inPlace && !b.addBanID(id, c, compact) {
		return
	}
	rec := banRec{tenant: b.tenant(tenant), expire: expire}
	extID := ""
	if compact {
		rec.id = c
	} else {
		extID = strings.Clone(id)
	}
	rec.ext = b.ext(extID, caps)
	if b.inPlace {
		value = b.keys.copy(value)
	}
	added := false
	switch kind {
	case subjectUser:
		b.s.users, added = addBan(b.s.users, strHash(value), value, rec, id, b.inPlace)
	case subjectDevice:
		b.s.devices, added = addBan(b.s.devices, strHash(value), value, rec, id, b.inPlace)
	case subjectIP:
		if !b.inPlace {
			b.s.ips = b.s.ips.clone()
		}
		added = b.s.ips.addBan(prefix, rec, id, b.inPlace)
	}
	if added {
		b.s.nBans++
		b.noteExpiry(rec.expire)
	}
}

// liftBan removes a ban by ID.
func (b *builder) liftBan(x *pb.Ban) {
	kind, value, prefix, ok := banSubject(x)
	if !ok {
		return
	}
	removed := false
	switch kind {
	case subjectUser:
		b.s.users, removed = liftBan(b.s.users, strHash(value), value, x.GetBanId())
	case subjectDevice:
		b.s.devices, removed = liftBan(b.s.devices, strHash(value), value, x.GetBanId())
	case subjectIP:
		var ips *ipTable
		if ips, removed = b.s.ips.liftBan(prefix, x.GetBanId()); removed {
			b.s.ips = ips
		}
	}
	if removed {
		b.s.nBans--
	}
}

// addBan adds rec under k, unless a ban with that ID is there.
func addBan[K comparable](p index[K, banRec], h uint64, k K, rec banRec, id string, inPlace bool) (index[K, banRec], bool) {
	if inPlace {
		p.add(h, k, rec) // the builder checked the ID
		return p, true
	}
	added := false
	p = p.update(h, func(run []entry[K, banRec]) ([]entry[K, banRec], bool) {
		for i := range run {
			if run[i].k == k && run[i].v.banID() == id {
				return nil, false
			}
		}
		added = true
		return append(run, entry[K, banRec]{h, k, rec}), true // run's capacity is capped: a copy
	})
	return p, added
}

// liftBan removes the ban with ID id under k.
func liftBan[K comparable](p index[K, banRec], h uint64, k K, id string) (index[K, banRec], bool) {
	removed := false
	p = p.update(h, func(run []entry[K, banRec]) ([]entry[K, banRec], bool) {
		var out []entry[K, banRec]
		for i := range run {
			if run[i].k == k && run[i].v.banID() == id {
				removed = true
				continue
			}
			out = append(out, run[i])
		}
		return out, removed
	})
	return p, removed
}

func (b *builder) revoke(r *pb.RevokedSession) {
	sid := revokedKey(r) // the session ID, or an external key (external.go)
	if sid == "" {
		return
	}
	until := unixNanos(r.GetAccessExpireTime())
	if until == 0 {
		until = math.MaxInt64 // no bound given: keep it until a reset
	}
	if r.GetIssuer() != "" && r.GetTokenId() != "" {
		b.s.jtiRevoked++
	}
	h := strHash(sid)
	if b.inPlace {
		b.s.revoked.add(h, b.keys.copy(sid), until) // the snapshot builder deduplicates
	} else {
		b.s.revoked = b.s.revoked.update(h, func(run []entry[string, int64]) ([]entry[string, int64], bool) {
			out := make([]entry[string, int64], 0, len(run)+1)
			for _, e := range run {
				if e.k != sid {
					out = append(out, e)
				}
			}
			return append(out, entry[string, int64]{h, sid, until}), true
		})
	}
	b.noteExpiry(until)
}

// applyEvent applies one event of a change.
func (b *builder) applyEvent(e *pb.Event) {
	switch k := e.GetKind().(type) {
	case *pb.Event_BanCreated:
		b.addBan(k.BanCreated)
	case *pb.Event_BanLifted:
		b.liftBan(k.BanLifted)
	case *pb.Event_SessionRevoked:
		b.revoke(k.SessionRevoked)
	case *pb.Event_KeyAdded:
		b.putKey(k.KeyAdded)
	case *pb.Event_KeyRetired:
		// A retired key keeps verifying until verify_until; a retirement
		// of a key the mirror does not hold adds it (its tokens are valid).
		b.putKey(k.KeyRetired)
	case *pb.Event_IssuerUpdated:
		b.putIssuer(k.IssuerUpdated)
	case *pb.Event_IssuerDeleted:
		b.deleteIssuer(k.IssuerDeleted)
	}
}

// pruned returns s without the bans, revoked sessions and keys that no
// longer apply at now (s itself when there are none). Checks compare times
// anyway; pruning only bounds memory.
func (s *state) pruned(now int64) *state {
	if s.nextExpiry == 0 || now < s.nextExpiry {
		return s
	}
	c := *s
	c.nextExpiry = 0
	b := builder{s: &c}
	activeBan := func(e *entry[string, banRec]) bool {
		if !e.v.activeAt(now) {
			return false
		}
		b.noteExpiry(e.v.expire)
		return true
	}
	var n, dropped int
	c.users, n = s.users.filter(activeBan)
	dropped += n
	c.devices, n = s.devices.filter(activeBan)
	dropped += n
	c.ips, n = s.ips.filter(func(r *banRec) bool {
		if !r.activeAt(now) {
			return false
		}
		b.noteExpiry(r.expire)
		return true
	})
	dropped += n
	c.nBans -= dropped
	c.jtiRevoked = 0
	c.revoked, _ = s.revoked.filter(func(e *entry[string, int64]) bool {
		if now >= e.v {
			return false
		}
		b.noteExpiry(e.v)
		if strings.HasPrefix(e.k, extTokenPrefix) {
			c.jtiRevoked++
		}
		return true
	})
	keys := make(map[string]verificationKey, len(s.keys))
	for id, k := range s.keys {
		if k.until != 0 && now >= k.until {
			c.keyGen++
			continue
		}
		keys[id] = k
		b.noteExpiry(k.until)
	}
	c.keys = keys
	return &c
}
