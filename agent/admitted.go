package agent

import (
	"hash/maphash"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"

	"github.com/portcullis-dev/portcullis/client"
)

// admitted is the answer to an admitted request of one verified session,
// rendered once for all its requests: the forward-auth header values and
// the ext_authz OK response. It is shared by concurrent answers and never
// modified: the values are one-element slices of capacity one, so that
// an append (http.Header.Add) copies rather than writes into them, and
// gRPC only reads (marshals) the response.
type admitted struct {
	sess   *client.Session
	values [numIdentity][]string // in the order of IdentityHeaders
	ok     *authv3.CheckResponse
}

// admittedCache keeps the admitted answers of recent sessions, keyed by
// the *client.Session the mirror returns: the mirror returns the same one
// for every check of a cached token and a new one when it verifies the
// token again (a new cache entry, a new signing key), so the key is never
// stale, and a refusal is decided before the cache is looked at. A
// session's fields never change (the mirror's contract), so an entry needs
// no invalidation; holding the pointer keeps the session from being
// collected, so its address cannot be reused by another. Direct-mapped:
// a collision replaces the slot, at the cost of rendering again.
type admittedCache struct {
	seed  maphash.Seed
	slots [admittedSlots]atomic.Pointer[admitted]
}

// admittedSlots bounds the sessions kept (and the memory: a slot holds
// well under a kilobyte), enough for the active sessions behind one
// gateway's keep-alive traffic; more only means rendering again.
const admittedSlots = 4096

func newAdmittedCache() *admittedCache {
	return &admittedCache{seed: maphash.MakeSeed()}
}

// get returns the admitted answer for s, rendering it on a miss.
func (c *admittedCache) get(s *client.Session) *admitted {
	slot := &c.slots[maphash.Comparable(c.seed, s)%admittedSlots]
	if a := slot.Load(); a != nil && a.sess == s {
		return a
	}
	a := renderAdmitted(s)
	slot.Store(a)
	return a
}

func renderAdmitted(s *client.Session) *admitted {
	a := &admitted{sess: s}
	id := [numIdentity]string{s.UserID, s.SessionID, s.TenantID, s.Issuer}
	ok := &authv3.OkHttpResponse{}
	for i := range id {
		a.values[i] = []string{id[i]}
		if id[i] == "" {
			// Envoy has no empty header to overwrite with: a header
			// the session has no value for (the issuer of the
			// authority's own tokens) is removed instead.
			ok.HeadersToRemove = append(ok.HeadersToRemove, identityLower[i])
			continue
		}
		ok.Headers = append(ok.Headers, overwrite(identityLower[i], id[i]))
	}
	a.ok = okResponse(ok)
	return a
}

// publicAnswer is the answer to a request of a public route: empty
// identity headers (forward-auth: a gateway copying them overwrites the
// client's), removed ones (ext_authz).
var publicAnswer = func() *admitted {
	a := &admitted{ok: okResponse(&authv3.OkHttpResponse{HeadersToRemove: identityLower[:]})}
	for i := range a.values {
		a.values[i] = []string{""}
	}
	return a
}()

func okResponse(ok *authv3.OkHttpResponse) *authv3.CheckResponse {
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
	}
}

// overwrite is a header Envoy sets, replacing the client's; name is lower
// case.
func overwrite(name, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: name, Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}
