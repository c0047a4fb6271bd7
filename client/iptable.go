package client

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// ipTable holds the IP bans: for each prefix length an index keyed by the
// masked address, and a bitmap of the lengths in use. A lookup probes only
// the lengths in use, longest first: with the handful of lengths bans
// really use (/32, /24, /16; /128, /64, /56, /48) that is a few probes of
// an integer key, most of them answered by a Bloom filter, and never more
// than 32 (IPv4) or 128 (IPv6) however many prefixes there are.
// BenchmarkCheckCached measures both the usual and the every-length case.
//
// The alternative, a compressed trie, walks up to 32/128 nodes of pointers
// per lookup (cache misses in a large table) and needs path copying for
// copy-on-write; the per-length indexes reuse index, whose updates copy
// one shard.
type ipTable struct {
	v4 [33]index[uint32, banRec]
	// IPv6 prefixes of up to 64 bits are keyed by their first 64 bits
	// alone; longer ones by all 128.
	v6short [65]index[uint64, banRec]
	v6long  [129]index[v6key, banRec]
	v4Lens  uint64    // bit l set: v4[l] is not empty
	v6Lens  [3]uint64 // bit l%64 of word l/64 set: length l is not empty
}

type v6key struct{ hi, lo uint64 }

func v4Hash(k uint32) uint64  { return mix(uint64(k)) }
func v6sHash(k uint64) uint64 { return mix(k) }
func v6lHash(k v6key) uint64  { return mix(k.hi ^ mix(k.lo)) }

func v4Bits(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func v6Bits(a netip.Addr) (hi, lo uint64) {
	b := a.As16()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

func v4Mask(x uint32, l int) uint32 { return x & (^uint32(0) << (32 - l)) }
func v6Mask(x uint64, l int) uint64 { return x & (^uint64(0) << (64 - l)) } // l in 1..64

// normalAddr is the form of a client address the table is keyed by: an
// IPv4-mapped IPv6 address is its IPv4 address (so that IPv4 bans match a
// dual-stack listener's clients) and zones are dropped.
func normalAddr(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

func (t *ipTable) clone() *ipTable {
	c := *t
	return &c
}

// addBan adds rec on p (masked, not /0) to t, in place: t is being built,
// or is a clone. It reports false when a ban with ID id is there.
func (t *ipTable) addBan(p netip.Prefix, rec banRec, id string, inPlace bool) bool {
	a, l := p.Addr(), p.Bits()
	var added bool
	switch {
	case a.Is4():
		k := v4Bits(a)
		t.v4[l], added = addBan(t.v4[l], v4Hash(k), k, rec, id, inPlace)
	case l <= 64:
		k, _ := v6Bits(a)
		t.v6short[l], added = addBan(t.v6short[l], v6sHash(k), k, rec, id, inPlace)
	default:
		hi, lo := v6Bits(a)
		k := v6key{hi, lo}
		t.v6long[l], added = addBan(t.v6long[l], v6lHash(k), k, rec, id, inPlace)
	}
	t.setLen(a.Is4(), l)
	return added
}

// liftBan returns a copy of t without the ban id on p, or t and false.
func (t *ipTable) liftBan(p netip.Prefix, id string) (*ipTable, bool) {
	a, l := p.Addr(), p.Bits()
	c := t.clone()
	var removed bool
	switch {
	case a.Is4():
		k := v4Bits(a)
		c.v4[l], removed = liftBan(t.v4[l], v4Hash(k), k, id)
	case l <= 64:
		k, _ := v6Bits(a)
		c.v6short[l], removed = liftBan(t.v6short[l], v6sHash(k), k, id)
	default:
		hi, lo := v6Bits(a)
		k := v6key{hi, lo}
		c.v6long[l], removed = liftBan(t.v6long[l], v6lHash(k), k, id)
	}
	if !removed {
		return t, false
	}
	c.setLen(a.Is4(), l)
	return c, true
}

// setLen updates the bitmaps for length l.
func (t *ipTable) setLen(v4 bool, l int) {
	if v4 {
		t.v4Lens &^= 1 << l
		if t.v4[l].len() > 0 {
			t.v4Lens |= 1 << l
		}
		return
	}
	used := t.v6long[l].len() > 0
	if l <= 64 {
		used = t.v6short[l].len() > 0
	}
	t.v6Lens[l/64] &^= 1 << (l % 64)
	if used {
		t.v6Lens[l/64] |= 1 << (l % 64)
	}
}

// freeze finishes a table built in place.
func (t *ipTable) freeze() {
	for l := range t.v4 {
		t.v4[l].freeze()
	}
	for l := range t.v6short {
		t.v6short[l].freeze()
	}
	for l := range t.v6long {
		t.v6long[l].freeze()
	}
}

// match passes the bans of every prefix containing a (normalised), longest
// prefix first, to m.
func (t *ipTable) match(a netip.Addr, m *matcher) {
	if a.Is4() {
		x := v4Bits(a)
		for lens := t.v4Lens; lens != 0; {
			l := bits.Len64(lens) - 1
			lens &^= 1 << l
			k := v4Mask(x, l)
			consider(m, t.v4[l].run(v4Hash(k)), k, reasonIP)
		}
		return
	}
	if !a.Is6() {
		return
	}
	hi, lo := v6Bits(a)
	for w := 2; w >= 0; w-- {
		for lens := t.v6Lens[w]; lens != 0; {
			b := bits.Len64(lens) - 1
			lens &^= 1 << b
			if l := w*64 + b; l <= 64 {
				k := v6Mask(hi, l)
				consider(m, t.v6short[l].run(v6sHash(k)), k, reasonIP)
			} else {
				k := v6key{hi, v6Mask(lo, l-64)}
				consider(m, t.v6long[l].run(v6lHash(k)), k, reasonIP)
			}
		}
	}
}

// all calls fn with every ban and its prefix.
func (t *ipTable) all(fn func(netip.Prefix, *banRec)) {
	v6 := func(hi, lo uint64, l int, r *banRec) {
		var a [16]byte
		binary.BigEndian.PutUint64(a[:8], hi)
		binary.BigEndian.PutUint64(a[8:], lo)
		fn(netip.PrefixFrom(netip.AddrFrom16(a), l), r)
	}
	for l := range t.v4 {
		t.v4[l].all(func(e *entry[uint32, banRec]) {
			var a [4]byte
			binary.BigEndian.PutUint32(a[:], e.k)
			fn(netip.PrefixFrom(netip.AddrFrom4(a), l), &e.v)
		})
	}
	for l := range t.v6short {
		t.v6short[l].all(func(e *entry[uint64, banRec]) { v6(e.k, 0, l, &e.v) })
	}
	for l := range t.v6long {
		t.v6long[l].all(func(e *entry[v6key, banRec]) { v6(e.k.hi, e.k.lo, l, &e.v) })
	}
}

// filter returns t without the bans keep rejects (t itself when none) and
// how many it dropped.
func (t *ipTable) filter(keep func(*banRec) bool) (*ipTable, int) {
	c := t.clone()
	total := 0
	for l := range t.v4 {
		var n int
		c.v4[l], n = t.v4[l].filter(func(e *entry[uint32, banRec]) bool { return keep(&e.v) })
		total += n
		c.setLen(true, l)
	}
	for l := 1; l < len(t.v6long); l++ {
		var n int
		if l <= 64 {
			c.v6short[l], n = t.v6short[l].filter(func(e *entry[uint64, banRec]) bool { return keep(&e.v) })
		} else {
			c.v6long[l], n = t.v6long[l].filter(func(e *entry[v6key, banRec]) bool { return keep(&e.v) })
		}
		total += n
		c.setLen(false, l)
	}
	if total == 0 {
		return t, 0
	}
	return c, total
}
