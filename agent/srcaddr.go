package agent

import (
	"hash/maphash"
	"net/netip"
	"sync/atomic"

	"github.com/portcullis-dev/portcullis/clientip"
)

// addrCache remembers the parsed form of the source addresses Envoy sends
// (strings): a gateway's traffic comes from a working set of clients far
// smaller than its requests, and a hash and a comparison cost less than
// parsing. Direct-mapped, like admittedCache: a collision replaces the
// slot, at the cost of parsing again. An entry is the parse of exactly its
// string, so it is never stale and cannot answer for another.
type addrCache struct {
	seed  maphash.Seed
	slots [addrSlots]atomic.Pointer[parsedAddr]
}

type parsedAddr struct {
	s string
	a netip.Addr
}

// addrSlots bounds the memory (a slot holds under a hundred bytes).
const addrSlots = 1024

func newAddrCache() *addrCache {
	return &addrCache{seed: maphash.MakeSeed()}
}

// parse is parseSource(s), remembered.
func (c *addrCache) parse(s string) netip.Addr {
	slot := &c.slots[maphash.String(c.seed, s)%addrSlots]
	if p := slot.Load(); p != nil && p.s == s {
		return p.a
	}
	a := parseSource(s)
	slot.Store(&parsedAddr{s: s, a: a})
	return a
}

// parseSource parses a source address as Envoy sends it: a bare IP (no
// port), parsed as one first, without clientip.FromString's host:port
// attempt, whose failure costs an error allocation.
func parseSource(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		return a // decide normalizes it
	}
	return clientip.FromString(s)
}
