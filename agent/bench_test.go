package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"

	"github.com/portcullis-dev/portcullis/agent"
	"github.com/portcullis-dev/portcullis/client"
)

// The decision for a cached token, at each layer, against client.Mirror.Check
// alone with the same input: run in one process, so the ratios compare
// like with like. BenchmarkDecision gives each layer's time and
// allocations; BenchmarkDecisionInterleaved the ratios, each layer run in
// turn, so that the machine's changing load falls on all alike.
//
//	go test -run '^$' -bench 'BenchmarkDecision' -count 5 ./agent/
func BenchmarkDecision(b *testing.B) {
	for _, l := range decisionLayers(b) {
		b.Run(l.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				l.run(b)
			}
		})
	}
}

// BenchmarkDecisionInterleaved runs the layers of BenchmarkDecision in
// rounds (each layer 256 times in a row, timed as a whole, then the
// next) and reports each layer's time and its ratio to Mirror.Check.
func BenchmarkDecisionInterleaved(b *testing.B) {
	layers := decisionLayers(b)
	const chunk = 256
	total := make([]time.Duration, len(layers))
	for b.Loop() {
		for i, l := range layers {
			t0 := time.Now()
			for range chunk {
				l.run(b)
			}
			total[i] += time.Since(t0)
		}
	}
	for i, l := range layers {
		b.ReportMetric(float64(total[i].Nanoseconds())/float64(b.N*chunk), l.name+"-ns")
		if i > 0 {
			b.ReportMetric(float64(total[i])/float64(total[0]), l.name+"/mirror")
		}
	}
}

type layer struct {
	name string
	run  func(b *testing.B)
}

// decisionLayers: client.Mirror.Check; Agent.Decide; the forward-auth
// handler (the request built once, a writer whose header map is cleared
// per call, as net/http gives each request an empty one), with the three
// headers a gateway adds and with a browser's fourteen; the ext_authz
// Check without a transport (the request message built once).
func decisionLayers(b *testing.B) []layer {
	e := startEnv(b, testConfig, client.MirrorOptions{StaleAfter: time.Hour}, agent.Options{})
	tok := e.login(b, "alice", "")
	const peer = "198.51.100.7" // untrusted: the client address is the peer
	in := client.CheckInput{ClientIP: netip.MustParseAddr(peer)}
	ctx := context.Background()
	sess, err := e.mirror.Check(ctx, tok, in)
	if err != nil {
		b.Fatal(err)
	}
	ident := [len(agent.IdentityHeaders)][]string{{sess.UserID}, {sess.SessionID}, {sess.TenantID}, {sess.Issuer}}

	// Read as the forward-auth handler reads headers: by canonical name,
	// without http.Header.Get's canonicalization per lookup.
	hdr := canonical{"Authorization": {"Bearer " + tok}}
	dreq := agent.Request{Method: "GET", URI: "/api/posts?page=2", Peer: netip.MustParseAddr(peer), Header: hdr}

	h := e.agent.Handler()
	freq := httptest.NewRequest("GET", "/authz", nil)
	freq.RemoteAddr = peer + ":5555"
	// As the agent's server does: the peer parsed once per connection.
	freq = freq.WithContext(agent.ConnContext(freq.Context(), peerConn{}))
	freq.Header.Set("Authorization", "Bearer "+tok)
	freq.Header.Set("X-Original-Method", "GET")
	freq.Header.Set("X-Original-URI", "/api/posts?page=2")
	w := &discardWriter{h: http.Header{}}

	// The same subrequest as nginx sends it for a browser's request: the
	// client's own headers come along (auth_request passes them), so a
	// handler that reads headers by walking the map pays for all of them.
	breq := freq.Clone(freq.Context())
	for k, v := range map[string]string{
		"User-Agent":                "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
		"Accept":                    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
		"Accept-Language":           "en-US,en;q=0.5",
		"Accept-Encoding":           "gzip, deflate, br, zstd",
		"Cookie":                    "theme=dark; _ga=GA1.1.123456789.1700000000",
		"Referer":                   "https://app.example/api/posts",
		"Sec-Fetch-Dest":            "document",
		"Sec-Fetch-Mode":            "navigate",
		"Sec-Fetch-Site":            "same-origin",
		"Upgrade-Insecure-Requests": "1",
		"X-Forwarded-For":           peer,
	} {
		breq.Header.Set(k, v)
	}

	srv := extAuthzServer(e.agent)
	ereq := checkReq(peer, "GET", "/api/posts?page=2", tok, nil)

	return []layer{
		{"mirror-check", func(b *testing.B) {
			if _, err := e.mirror.Check(ctx, tok, in); err != nil {
				b.Fatal(err)
			}
		}},
		// The floor of any forward-auth handler: the mirror's check plus
		// only the header work the door cannot skip (the token and the
		// original request read from nginx's three headers, the four
		// identity headers written, the response map cleared as net/http
		// gives each request a fresh one), with no route, address or
		// metrics work. Its ratio to mirror-check bounds what the real
		// handler can reach.
		{"check-plus-headers", func(b *testing.B) {
			clear(w.h)
			hv := freq.Header
			a, m, u := hv["Authorization"], hv["X-Original-Method"], hv["X-Original-Uri"]
			if len(a) != 1 || len(m) != 1 || len(u) != 1 || len(a[0]) < 8 {
				b.Fatal("headers")
			}
			if _, err := e.mirror.Check(ctx, a[0][7:], in); err != nil {
				b.Fatal(err)
			}
			// The values rendered once, as the handler's cache does.
			for i, name := range agent.IdentityHeaders {
				w.h[name] = ident[i]
			}
		}},
		{"decide", func(b *testing.B) {
			if d := e.agent.Decide(ctx, dreq); d.Err != nil {
				b.Fatal(d.Err)
			}
		}},
		{"forward-auth-handler", func(b *testing.B) {
			clear(w.h)
			w.code = 0
			h.ServeHTTP(w, freq)
			if w.code != http.StatusOK {
				b.Fatal(w.code)
			}
		}},
		{"forward-auth-browser", func(b *testing.B) {
			clear(w.h)
			w.code = 0
			h.ServeHTTP(w, breq)
			if w.code != http.StatusOK {
				b.Fatal(w.code)
			}
		}},
		{"ext-authz-check", func(b *testing.B) {
			resp, err := srv.Check(ctx, ereq)
			if err != nil || resp.GetOkResponse() == nil {
				b.Fatal(resp, err)
			}
		}},
	}
}

type canonical http.Header

func (h canonical) Get(name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (h canonical) Values(name string) []string { return h[name] }

// discardWriter is a ResponseWriter that keeps only the status, so that the
// handler's own cost is measured, not a recorder's.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// peerConn is a connection from the benchmark's client address.
type peerConn struct{ net.Conn }

func (peerConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.ParseIP("198.51.100.7"), Port: 5555}
}

// capture is a grpc.ServiceRegistrar that keeps the implementation, to call
// the ext_authz handler without a transport.
type capture struct{ impl any }

func (c *capture) RegisterService(_ *grpc.ServiceDesc, impl any) { c.impl = impl }

func extAuthzServer(a *agent.Agent) authv3.AuthorizationServer {
	c := &capture{}
	a.RegisterExtAuthz(c)
	return c.impl.(authv3.AuthorizationServer)
}

// latencies collects per-request latencies from many goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d...)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B, prefix string) {
	slices.Sort(l.d)
	if len(l.d) == 0 {
		return
	}
	q := func(p float64) float64 { return float64(l.d[int(p*float64(len(l.d)-1))].Microseconds()) }
	b.ReportMetric(q(0.50), prefix+"p50-µs")
	b.ReportMetric(q(0.99), prefix+"p99-µs")
}

// BenchmarkForwardAuthHTTP is sustained forward-auth over real loopback
// HTTP/1.1 keep-alive connections (as nginx's keepalive upstream). The
// load generator is in the same process but costs little (it writes a
// fixed request and reads the header block of the answer), so that with
// -cpu 1 the agent has most of the one core; what it does use counts
// against the agent.
//
//	go test -run '^$' -bench 'BenchmarkForwardAuthHTTP' -cpu 1 -benchtime 200000x ./agent/
func BenchmarkForwardAuthHTTP(b *testing.B) {
	e := startEnv(b, testConfig, client.MirrorOptions{StaleAfter: time.Hour}, agent.Options{})
	tok := e.login(b, "alice", "")
	addr := strings.TrimPrefix(e.srv.URL, "http://")
	raw := []byte("GET /authz HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer " + tok +
		"\r\nX-Original-Method: GET\r\nX-Original-URI: /api/posts?page=2\r\nX-Forwarded-For: 198.51.100.7\r\n\r\n")
	var lat latencies
	b.SetParallelism(8)
	cpu0 := cpuTime(b)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		var mine []time.Duration
		for pb.Next() {
			t0 := time.Now()
			if _, err := c.Write(raw); err != nil {
				b.Error(err)
				return
			}
			n := 0
			for !bytes.Contains(buf[:n], []byte("\r\n\r\n")) {
				m, err := c.Read(buf[n:])
				if err != nil {
					b.Error(err)
					return
				}
				n += m
			}
			if !bytes.HasPrefix(buf, []byte("HTTP/1.1 200 ")) {
				b.Errorf("answer %q", buf[:n])
				return
			}
			mine = append(mine, time.Since(t0))
		}
		lat.add(mine)
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "decisions/s")
	// The process's CPU time (agent and load generator together) per
	// decision: what one core sustains when it is not shared, whatever the
	// machine's other load does to the wall-clock rate.
	cpu := cpuTime(b) - cpu0
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "cpu-µs/decision")
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "decisions/cpu-s")
	lat.report(b, "")
}

// cpuTime is the CPU time (user + system) the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkNginxAuthRequest: the same nginx, three locations, requests
// interleaved in rounds so that the machine's load falls on all alike:
// auth_request to the agent; to a Go server that always answers 200 (the
// same proxied subrequest, no decision: the agent's decision is the
// difference); to an nginx location that returns 200 (no hop at all).
//
//	go test -run '^$' -bench 'BenchmarkNginxAuthRequest' -benchtime 40x ./agent/
func BenchmarkNginxAuthRequest(b *testing.B) {
	nginxBinary(b)
	e := startEnv(b, testConfig, client.MirrorOptions{StaleAfter: time.Hour}, agent.Options{})
	tok := e.login(b, "alice", "")
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	b.Cleanup(ok.Close)
	// The always-200 server is an upstream with kept-alive connections,
	// as the documented configuration makes the agent.
	base := startNginxConf(b, strings.TrimPrefix(e.srv.URL, "http://"), strings.TrimPrefix(ok.URL, "http://"), `
    upstream always200 {
        server %[2]s;
        keepalive 16;
    }
`, `
        location /agent/ {
            include %[1]s/portcullis-protect.conf;
            proxy_pass http://%[2]s;
        }
        location = /_always200_proxied {
            internal;
            proxy_pass http://always200;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }
        location /proxied200/ {
            auth_request /_always200_proxied;
            proxy_pass http://%[2]s;
        }
        location = /_always200 {
            internal;
            return 200;
        }
        location /internal200/ {
            auth_request /_always200;
            proxy_pass http://%[2]s;
        }
`)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	const conc, perRound = 8, 400
	variants := []string{"agent", "proxied200", "internal200"}
	total := map[string]time.Duration{}
	lat := map[string]*latencies{}
	for _, v := range variants {
		lat[v] = &latencies{}
	}
	run := func(v string) {
		var wg sync.WaitGroup
		start := time.Now()
		for g := 0; g < conc; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("GET", base+"/"+v+"/x", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				mine := make([]time.Duration, 0, perRound/conc)
				for i := 0; i < perRound/conc; i++ {
					t0 := time.Now()
					resp, err := c.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("%s: status %d", v, resp.StatusCode)
						return
					}
					mine = append(mine, time.Since(t0))
				}
				lat[v].add(mine)
			}()
		}
		wg.Wait()
		total[v] += time.Since(start)
	}
	for _, v := range variants { // warm connections and caches
		run(v)
		total[v] = 0
		lat[v] = &latencies{}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, v := range variants {
			run(v)
		}
	}
	n := float64(b.N * perRound)
	for _, v := range variants {
		b.ReportMetric(float64(total[v].Microseconds())/n, v+"-µs/req")
		lat[v].report(b, v+"-")
	}
	b.ReportMetric(float64(total["agent"])/float64(total["proxied200"]), "agent/proxied200")
	b.ReportMetric(float64(total["agent"])/float64(total["internal200"]), "agent/internal200")
	fmt.Fprintf(b.Output(), "requests per variant: %d, %d concurrent\n", b.N*perRound, conc)
}
