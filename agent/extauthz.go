package agent

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
)

// RegisterExtAuthz registers the agent on s as Envoy's external
// authorization service v3 (envoy.service.auth.v3.Authorization/Check), for
// Envoy's ext_authz HTTP filter with a grpc_service and Istio's CUSTOM
// authorization provider (envoyExtAuthzGrpc).
func (a *Agent) RegisterExtAuthz(s grpc.ServiceRegistrar) {
	authv3.RegisterAuthorizationServer(s, &extAuthz{a: a, addrs: newAddrCache()})
}

type extAuthz struct {
	authv3.UnimplementedAuthorizationServer
	a     *Agent
	addrs *addrCache // Envoy's source addresses, parsed (srcaddr.go)
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
	d := decide(ctx, x.a, x.a.cfg.Load(), h.GetMethod(), h.GetPath(), x.sourceAddr(attrs.GetSource()), hdr)
	if d.Err == nil {
		x.a.metrics.observe(doorExtAuthz, d.Public, nil, start)
		// Rendered once per session (admitted.go); shared, read-only.
		if d.Session == nil {
			return publicAnswer.ok, nil
		}
		return x.a.admitted.get(d.Session).ok, nil
	}
	ref := refusalOf(d.Err)
	x.a.metrics.observe(doorExtAuthz, d.Public, &ref, start)
	x.a.log.DebugContext(ctx, "portcullis agent refused a request", "door", "ext_authz", "method", h.GetMethod(), "path", h.GetPath(),
		"client_ip", d.Input.ClientIP, "device_id", d.Input.DeviceID, "capability", d.Input.Capability, "error", d.Err)
	return deniedResponse(ref), nil
}

// sourceAddr is the downstream peer's address.
func (x *extAuthz) sourceAddr(p *authv3.AttributeContext_Peer) netip.Addr {
	sa := p.GetAddress().GetSocketAddress()
	if sa == nil {
		return netip.Addr{}
	}
	return x.addrs.parse(sa.GetAddress())
}

func deniedResponse(ref refusal) *authv3.CheckResponse {
	body, _ := json.Marshal(ref)
	hs := []*corev3.HeaderValueOption{overwrite("content-type", "application/json"), overwrite(lowerReason, ref.Reason)}
	if ref.BanID != "" {
		hs = append(hs, overwrite(lowerBanID, ref.BanID), overwrite(lowerExpireTime, ref.ExpireTime))
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

var (
	lowerReason     = newHName(HeaderReason).lower
	lowerBanID      = newHName(HeaderBanID).lower
	lowerExpireTime = newHName(HeaderExpireTime).lower
)
