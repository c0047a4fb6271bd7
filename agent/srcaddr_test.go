package agent

import (
	"net/netip"
	"testing"
)

// The cache answers exactly what parsing answers, for every form Envoy may
// send, on a miss, on a hit, and after other addresses took the slots.
func TestAddrCache(t *testing.T) {
	c := newAddrCache()
	cases := map[string]netip.Addr{
		"198.51.100.7":       netip.MustParseAddr("198.51.100.7"),
		"2001:db8::1":        netip.MustParseAddr("2001:db8::1"),
		"::ffff:192.0.2.1":   netip.MustParseAddr("::ffff:192.0.2.1"), // decide normalizes it
		"fe80::1%eth0":       netip.MustParseAddr("fe80::1%eth0"),
		"192.0.2.9:443":      netip.MustParseAddr("192.0.2.9"),
		"[2001:db8::2]:8443": netip.MustParseAddr("2001:db8::2"),
		"":                   {},
		"not an address":     {},
		"198.51.100.07":      {}, // a leading zero is not an IPv4 address
	}
	for round := range 2 { // a miss, then a hit
		for s, want := range cases {
			if got := c.parse(s); got != want {
				t.Errorf("round %d: parse(%q) = %v, want %v", round, s, got, want)
			}
		}
	}
	// Fill every slot with other addresses (collisions replace entries),
	// then ask again: never another string's address.
	for i := range 4 * addrSlots {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if got := c.parse(a.String()); got != a {
			t.Fatalf("parse(%q) = %v", a.String(), got)
		}
	}
	for s, want := range cases {
		if got := c.parse(s); got != want {
			t.Errorf("after eviction: parse(%q) = %v, want %v", s, got, want)
		}
	}
}

// Envoy's source address parsed each time, against remembered (a hit):
//
//	go test -run '^$' -bench 'BenchmarkSourceAddr' -count 5 ./agent/
func BenchmarkSourceAddr(b *testing.B) {
	c := newAddrCache()
	for _, s := range []string{"198.51.100.7", "2001:db8::1234:5678"} {
		b.Run("parse/"+s, func(b *testing.B) {
			for b.Loop() {
				parseSource(s)
			}
		})
		b.Run("cached/"+s, func(b *testing.B) {
			for b.Loop() {
				c.parse(s)
			}
		})
	}
}
