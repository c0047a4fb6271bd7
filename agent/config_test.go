package agent_test

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/agent"
	"github.com/portcullis-dev/portcullis/client"
)

func TestParseConfigRefuses(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"trusted_proxys: [10.0.0.0/8]", "field trusted_proxys not found"},
		{"trusted_proxies: [10.0.0.0/33]", "trusted_proxies"},
		{"routes: [{path_prefix: /api, capability: POST}]", `capability "POST"`},
		{"routes: [{path_prefix: api, capability: post}]", "want an absolute path"},
		{"routes: [{method: 'GET /', path_prefix: /api, capability: post}]", "not an HTTP method"},
		{"public: [{path_prefix: /api}]\nroutes: [{path_prefix: /api/posts, capability: post}]", "under public route"},
	} {
		_, err := agent.ParseConfig([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q", c.yaml, err, c.want)
		}
	}
	if _, err := agent.ParseConfig(nil); err != nil {
		t.Errorf("an empty file is the defaults: %v", err)
	}
}

// recorder is a Mirror that admits every token and records what it was
// asked: for the narrow tests of routing and addressing.
type recorder struct{ last client.CheckInput }

func (r *recorder) Check(_ context.Context, _ string, in client.CheckInput) (*client.Session, error) {
	r.last = in
	return &client.Session{UserID: "u", SessionID: "ses_x", TenantID: "public"}, nil
}

func (r *recorder) Stats() client.MirrorStats { return client.MirrorStats{} }

func decideWith(t *testing.T, yaml string) (func(method, uri, peer string, hdr http.Header) (agent.Decision, client.CheckInput), *recorder) {
	t.Helper()
	cfg, err := agent.ParseConfig([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	a, err := agent.New(rec, agent.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return func(method, uri, peer string, hdr http.Header) (agent.Decision, client.CheckInput) {
		rec.last = client.CheckInput{}
		if hdr == nil {
			hdr = http.Header{}
		}
		hdr.Set("Authorization", "Bearer tok")
		d := a.Decide(context.Background(), agent.Request{Method: method, URI: uri, Peer: netip.MustParseAddr(peer), Header: hdr})
		return d, rec.last
	}, rec
}

func TestRoutes(t *testing.T) {
	decide, _ := decideWith(t, `
routes:
  - {path_prefix: /api, capability: api}
  - {method: POST, path_prefix: /api/posts, capability: post}
  - {path_prefix: /api/posts, capability: posts-any}
  - {method: GET, path_prefix: /feed, capability: read}
public:
  - {method: GET, path_prefix: /static}
`)
	for _, c := range []struct{ method, uri, want string }{
		{"POST", "/api/posts/1", "post"},   // the longest prefix, the method's route
		{"GET", "/api/posts", "posts-any"}, // same prefix, any method
		{"GET", "/api/postsx", "api"},      // segment by segment
		{"GET", "/api//posts/./1", "posts-any"},
		{"POST", "/api/%70osts", "post"}, // percent-decoded
		{"HEAD", "/feed", "read"},        // GET covers HEAD
		{"POST", "/feed", ""},
		{"GET", "/other", ""},
		{"POST", "/static/x", ""}, // public for GET only
	} {
		d, in := decide(c.method, c.uri, "127.0.0.1", nil)
		if d.Public || d.Err != nil || in.Capability != c.want {
			t.Errorf("%s %s: capability %q (public %v, %v), want %q", c.method, c.uri, in.Capability, d.Public, d.Err, c.want)
		}
	}
	if d, _ := decide("GET", "/static/app.js?v=1", "127.0.0.1", nil); !d.Public {
		t.Error("GET /static/app.js not public")
	}
	if d, _ := decide("GET", "*", "127.0.0.1", nil); d.Err == nil {
		t.Error("a URI that is no absolute path was decided")
	}
}

func TestClientAddressAndDevice(t *testing.T) {
	decide, _ := decideWith(t, "device_header: X-Device\nclient_ip_header: X-Real-Ip\n")
	// Default trusted proxies: loopback.
	_, in := decide("GET", "/", "127.0.0.1", http.Header{"X-Real-Ip": {"203.0.113.5"}, "X-Device": {"d1"}})
	if in.ClientIP != netip.MustParseAddr("203.0.113.5") || in.DeviceID != "d1" {
		t.Errorf("from loopback: %+v", in)
	}
	_, in = decide("GET", "/", "::ffff:198.51.100.2", http.Header{"X-Real-Ip": {"203.0.113.5"}})
	if in.ClientIP != netip.MustParseAddr("198.51.100.2") {
		t.Errorf("from an untrusted peer: %+v", in)
	}
	decide, _ = decideWith(t, "trusted_proxies: []\n")
	_, in = decide("GET", "/", "127.0.0.1", http.Header{"X-Forwarded-For": {"203.0.113.5"}})
	if in.ClientIP != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("trusting no one: %+v", in)
	}
}
