package agent

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"

	"github.com/portcullis-dev/portcullis/clientip"
)

// RegisterExtAuthz registers the agent on s as Envoy's external
// authorization service v3 (envoy.service.auth.v3.Authorization/Check), for
// Envoy's ext_authz HTTP filter with a grpc_service and Istio's CUSTOM
// authorization provider (envoyExtAuthzGrpc).
func (a *Agent) RegisterExtAuthz(s grpc.ServiceRegistrar) {
	authv3.RegisterAuthorizationServer(s, &extAuthz{a: a})
}

type extAuthz struct {
	authv3.UnimplementedAuthorizationServer
	a *Agent
}

// Check decides the request Envoy describes: its method, path and headers
// (lower-case names), and its source address, which is the peer (Envoy's
// downstream remote address) from which a trusted proxy's X-Forwarded-For
// is followed as in forward-auth. It never fails the RPC: a refusal is a
// CheckResponse with the interceptors' status (code and ErrorInfo) and a
// denied HTTP response like forward-auth's, so that Envoy's
// failure_mode_allow, which lets requests through when the service
// fails, never turns a refusal into an admission.
func (x *extAuthz) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	start := startTimer()
	attrs := req.GetAttributes()
	h := attrs.GetRequest().GetHttp()
	hdr := envoyHeaders(h.GetHeaders())
	if hm := h.GetHeaderMap().GetHeaders(); len(hdr) == 0 && len(hm) > 0 {
		// Envoy's encode_raw_headers: a list of raw values instead of the map.
		hdr = make(envoyHeaders, len(hm))
		for _, kv := range hm {
			k, v := strings.ToLower(kv.GetKey()), string(kv.GetRawValue())
			if v == "" {
				v = kv.GetValue()
			}
			if prev, ok := hdr[k]; ok {
				v = prev + "," + v // as Envoy joins repeated headers in the map
			}
			hdr[k] = v
		}
	}
	var peer netip.Addr
	if sa := attrs.GetSource().GetAddress().GetSocketAddress(); sa != nil {
		peer = clientip.FromString(sa.GetAddress())
	}
	d := x.a.Decide(ctx, Request{Method: h.GetMethod(), URI: h.GetPath(), Peer: peer, Header: hdr})
	if d.Err == nil {
		x.a.metrics.observe(doorExtAuthz, d, nil, start)
		return okResponse(d), nil
	}
	ref := refusalOf(d.Err)
	x.a.metrics.observe(doorExtAuthz, d, &ref, start)
	x.a.log.DebugContext(ctx, "portcullis agent refused a request", "door", "ext_authz", "method", h.GetMethod(), "path", h.GetPath(),
		"client_ip", d.Input.ClientIP, "device_id", d.Input.DeviceID, "capability", d.Input.Capability, "error", d.Err)
	return deniedResponse(ref), nil
}

// okResponse admits the request with the identity headers, overwriting
// any the client sent; a public request has them removed.
func okResponse(d Decision) *authv3.CheckResponse {
	ok := &authv3.OkHttpResponse{}
	if d.Session == nil {
		ok.HeadersToRemove = []string{lowerName(HeaderUser), lowerName(HeaderSession), lowerName(HeaderTenant)}
	} else {
		id := identity(d)
		for i, name := range IdentityHeaders {
			ok.Headers = append(ok.Headers, overwrite(name, id[i]))
		}
	}
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
	}
}

func deniedResponse(ref refusal) *authv3.CheckResponse {
	body, _ := json.Marshal(ref)
	hs := []*corev3.HeaderValueOption{overwrite("content-type", "application/json"), overwrite(HeaderReason, ref.Reason)}
	if ref.BanID != "" {
		hs = append(hs, overwrite(HeaderBanID, ref.BanID), overwrite(HeaderExpireTime, ref.ExpireTime))
	}
	if ref.HTTPStatus == 401 {
		hs = append(hs, overwrite("www-authenticate", `Bearer error="invalid_token"`))
	}
	return &authv3.CheckResponse{
		Status: ref.Status().Proto(),
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(ref.HTTPStatus)},
			Headers: hs,
			Body:    string(body) + "\n",
		}},
	}
}

func overwrite(name, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: lowerName(name), Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// envoyHeaders adapts Envoy's header map (lower-case names; repeated
// headers joined with commas) to Headers.
type envoyHeaders map[string]string

func (h envoyHeaders) Get(name string) string { return h[lowerName(name)] }

func (h envoyHeaders) Values(name string) []string {
	if v, ok := h[lowerName(name)]; ok {
		return []string{v}
	}
	return nil
}

// lowerNames caches the lower-case form of the header names Decide asks
// for (a handful: the agent's own and the configured ones), so that a
// check does not allocate one per lookup.
var lowerNames sync.Map // canonical name -> lower-case name

func lowerName(name string) string {
	if v, ok := lowerNames.Load(name); ok {
		return v.(string)
	}
	l := strings.ToLower(name)
	lowerNames.Store(name, l)
	return l
}
