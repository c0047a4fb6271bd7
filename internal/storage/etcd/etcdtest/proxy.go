package etcdtest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards loopback TCP connections to a member, and can cut them:
// the client then sees its connection fail, as when a member crashes or
// the network drops, and reconnects through the proxy.
type Proxy struct {
	l      net.Listener
	target string

	mu     sync.Mutex
	conns  map[net.Conn]bool
	paused bool
}

// NewProxy starts a proxy to m on a free loopback port, closed when the
// test ends.
func NewProxy(t testing.TB, m *Member) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{l: l, target: m.Endpoint(), conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() {
		l.Close()
		p.Cut(false)
	})
	return p
}

// Endpoint is the proxy's address, for a client.
func (p *Proxy) Endpoint() string { return p.l.Addr().String() }

// Cut closes every connection through the proxy. With pause, new
// connections are refused (accepted and closed at once) until Resume.
func (p *Proxy) Cut(pause bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = pause
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Resume lets connections through again.
func (p *Proxy) Resume() {
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
}

func (p *Proxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		paused := p.paused
		p.mu.Unlock()
		if paused {
			c.Close()
			continue
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[u] = true, true
		p.mu.Unlock()
		go pipe(c, u)
		go pipe(u, c)
	}
}

func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}
