package clientip_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/portcullis-dev/portcullis/clientip"
)

func TestResolve(t *testing.T) {
	trusted := []netip.Prefix{}
	for _, s := range []string{"10.0.0.0/8", "::ffff:192.168.0.0/112"} {
		p, ok := clientip.Prefix(netip.MustParsePrefix(s))
		if !ok {
			t.Fatal(s)
		}
		trusted = append(trusted, p)
	}
	for _, c := range []struct {
		name, peer string
		header     []string
		want       string
	}{
		{"untrusted peer: header ignored", "198.51.100.1", []string{"203.0.113.9"}, "198.51.100.1"},
		{"trusted peer, one hop", "10.0.0.1", []string{"203.0.113.9"}, "203.0.113.9"},
		{"right-most untrusted wins over a spoofed left entry", "10.0.0.1", []string{"6.6.6.6, 203.0.113.9"}, "203.0.113.9"},
		{"trusted hops are skipped", "10.0.0.1", []string{"203.0.113.9, 10.1.1.1", "192.168.3.3"}, "203.0.113.9"},
		{"malformed entry: last trustworthy", "10.0.0.1", []string{"203.0.113.9, bogus, 10.2.2.2"}, "10.2.2.2"},
		{"only trusted: the left-most", "10.0.0.1", []string{"10.3.3.3"}, "10.3.3.3"},
		{"no header: the peer", "10.0.0.1", nil, "10.0.0.1"},
		{"entry with a port", "10.0.0.1", []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"IPv4-mapped entry is IPv4", "10.0.0.1", []string{"::ffff:203.0.113.9"}, "203.0.113.9"},
		{"IPv4-mapped peer in a mapped trusted prefix", "::ffff:192.168.1.1", []string{"203.0.113.9"}, "203.0.113.9"},
	} {
		got := clientip.Resolve(trusted, netip.MustParseAddr(c.peer), c.header)
		if got != netip.MustParseAddr(c.want) {
			t.Errorf("%s: got %v, want %s", c.name, got, c.want)
		}
	}
}

func TestFromNetAddrAndString(t *testing.T) {
	if got := clientip.FromNetAddr(&net.TCPAddr{IP: net.ParseIP("::ffff:198.51.100.7"), Port: 1}); got != netip.MustParseAddr("198.51.100.7") {
		t.Errorf("TCPAddr: %v", got)
	}
	if got := clientip.FromString("[fe80::1%eth0]:80"); got != netip.MustParseAddr("fe80::1") {
		t.Errorf("zone kept: %v", got)
	}
	if got := clientip.FromString("bufconn"); got.IsValid() {
		t.Errorf("not an address: %v", got)
	}
	if _, ok := clientip.Prefix(netip.Prefix{}); ok {
		t.Error("invalid prefix accepted")
	}
}
