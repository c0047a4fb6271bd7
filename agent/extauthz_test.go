package agent_test

import (
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/portcullis-dev/portcullis/agent"
	"github.com/portcullis-dev/portcullis/client"
)

// extAuthzClient serves the agent's ext_authz on a loopback port and
// returns go-control-plane's generated client of it, as Envoy calls it.
func extAuthzClient(t *testing.T, a *agent.Agent) authv3.AuthorizationClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	a.RegisterExtAuthz(g)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

// checkReq is a CheckRequest as Envoy sends it: the downstream peer's
// address, the method, path and lower-case headers.
func checkReq(source, method, path, token string, hdr map[string]string) *authv3.CheckRequest {
	h := map[string]string{":authority": "app.example", ":method": method, ":path": path}
	if token != "" {
		h["authorization"] = "Bearer " + token
	}
	for k, v := range hdr {
		h[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: source, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 50123}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: method, Path: path, Host: "app.example", Scheme: "https", Protocol: "HTTP/1.1", Headers: h}},
	}}
}

func TestExtAuthz(t *testing.T) {
	e := startEnv(t, `
routes:
  - {method: POST, path_prefix: /api/posts, capability: post}
public:
  - {path_prefix: /public}
trusted_proxies: [10.0.0.0/8]
`, client.MirrorOptions{}, agent.Options{})
	c := extAuthzClient(t, e.agent)
	ctx := hang(t)
	const client = "198.51.100.20" // an untrusted downstream

	check := func(req *authv3.CheckRequest) *authv3.CheckResponse {
		t.Helper()
		resp, err := c.Check(ctx, req)
		if err != nil {
			t.Fatalf("Check: %v (a refusal must be a CheckResponse, not an RPC error)", err)
		}
		return resp
	}
	wantOK := func(resp *authv3.CheckResponse, user string) {
		t.Helper()
		ok := resp.GetOkResponse()
		if resp.GetStatus().GetCode() != int32(codes.OK) || ok == nil {
			t.Fatalf("want OK, got %v", resp)
		}
		set := map[string]string{}
		for _, h := range ok.GetHeaders() {
			if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
				t.Fatalf("header %s appended, not overwritten: the client's own would reach the upstream", h.GetHeader().GetKey())
			}
			set[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		if user == "" {
			if len(set) != 0 || !slices.Equal(ok.GetHeadersToRemove(), []string{"x-portcullis-user", "x-portcullis-session", "x-portcullis-tenant", "x-portcullis-issuer"}) {
				t.Fatalf("public: set %v, removed %v; want the identity headers removed", set, ok.GetHeadersToRemove())
			}
			return
		}
		if set["x-portcullis-user"] != user || set["x-portcullis-session"] == "" || set["x-portcullis-tenant"] != "public" {
			t.Fatalf("identity headers %v, want user %q", set, user)
		}
		// The authority's own token has no issuer: a client's header of
		// that name is removed, not passed on.
		if _, has := set["x-portcullis-issuer"]; has || !slices.Equal(ok.GetHeadersToRemove(), []string{"x-portcullis-issuer"}) {
			t.Fatalf("set %v, removed %v; want x-portcullis-issuer removed", set, ok.GetHeadersToRemove())
		}
	}
	wantDenied := func(resp *authv3.CheckResponse, httpStatus int, code codes.Code, reason string) *authv3.DeniedHttpResponse {
		t.Helper()
		d := resp.GetDeniedResponse()
		st := status.FromProto(resp.GetStatus())
		var info *errdetails.ErrorInfo
		for _, x := range st.Details() {
			if i, ok := x.(*errdetails.ErrorInfo); ok {
				info = i
			}
		}
		if d == nil || int(d.GetStatus().GetCode()) != httpStatus || st.Code() != code || info.GetReason() != reason {
			t.Fatalf("got %v; want denied %d %v %s", resp, httpStatus, code, reason)
		}
		var hdrReason string
		for _, h := range d.GetHeaders() {
			if h.GetHeader().GetKey() == "x-portcullis-reason" {
				hdrReason = h.GetHeader().GetValue()
			}
		}
		if hdrReason != reason {
			t.Fatalf("x-portcullis-reason %q, want %q", hdrReason, reason)
		}
		return d
	}

	alice := e.login(t, "alice", "")
	bob := e.login(t, "bob", "")

	wantOK(check(checkReq(client, "GET", "/api/posts?x=1", alice, map[string]string{"x-portcullis-user": "admin"})), "alice")
	wantOK(check(checkReq(client, "GET", "/public/a", "", map[string]string{"x-portcullis-user": "admin"})), "")
	wantDenied(check(checkReq(client, "GET", "/api/posts", "", nil)), http.StatusUnauthorized, codes.Unauthenticated, "TOKEN_INVALID")

	ban := e.ban(t, userBan("alice"))
	d := wantDenied(check(checkReq(client, "GET", "/api/posts", alice, nil)), http.StatusForbidden, codes.PermissionDenied, "USER_BANNED")
	if want := `"ban_id":"` + ban.GetBanId() + `"`; !strings.Contains(d.GetBody(), want) {
		t.Fatalf("body %s lacks %s", d.GetBody(), want)
	}
	wantOK(check(checkReq(client, "GET", "/api/posts", bob, nil)), "bob")
	e.lift(t, ban.GetBanId())
	alice = e.login(t, "alice", "")
	wantOK(check(checkReq(client, "GET", "/api/posts", alice, nil)), "alice")

	ban = e.ban(t, userBan("bob", "post"))
	wantDenied(check(checkReq(client, "POST", "/api/posts", bob, nil)), http.StatusForbidden, codes.PermissionDenied, "CAPABILITY_RESTRICTED")
	wantOK(check(checkReq(client, "GET", "/api/posts", bob, nil)), "bob")
	e.lift(t, ban.GetBanId())

	ban = e.ban(t, ipBan("203.0.113.9"))
	// An untrusted downstream cannot name itself another client...
	wantOK(check(checkReq(client, "GET", "/api/posts", bob, map[string]string{"x-forwarded-for": "203.0.113.9"})), "bob")
	// ...a trusted front proxy does.
	wantDenied(check(checkReq("10.1.2.3", "GET", "/api/posts", bob, map[string]string{"x-forwarded-for": "203.0.113.9"})),
		http.StatusForbidden, codes.PermissionDenied, "IP_BANNED")
	e.lift(t, ban.GetBanId())

	// Envoy's encode_raw_headers sends a header list instead of the map.
	raw := checkReq(client, "GET", "/api/posts", bob, nil)
	hr := raw.GetAttributes().GetRequest().GetHttp()
	hr.HeaderMap = &corev3.HeaderMap{}
	for k, v := range hr.GetHeaders() {
		hr.HeaderMap.Headers = append(hr.HeaderMap.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
	}
	hr.Headers = nil
	wantOK(check(raw), "bob")
}
