package agent

import (
	"net/http"
	"strings"
)

// hname is a header name in both the forms the front doors look it up in:
// canonical (net/http's header map) and lower case (Envoy's). Decide's
// names are built once, with the configuration, so that a lookup neither
// canonicalizes nor lower-cases anything.
type hname struct{ canon, lower string }

func newHName(name string) hname {
	c := http.CanonicalHeaderKey(name)
	return hname{canon: c, lower: strings.ToLower(c)}
}

var hAuthorization = newHName("Authorization")

// headerSource is how Decide reads a front door's headers: the three it
// needs, by names already in the door's form.
type headerSource interface {
	// authorization is the (first) Authorization value.
	authorization() string
	// device is the (first) value of the configured device header n.
	device(n hname) string
	// clientIPs are the values of the client address header n.
	clientIPs(n hname) []string
}

// publicHeaders adapts a caller's Headers (Decide's exported input) to
// headerSource, by canonical name.
type publicHeaders struct{ h Headers }

func (p publicHeaders) authorization() string      { return p.h.Get(hAuthorization.canon) }
func (p publicHeaders) device(n hname) string      { return p.h.Get(n.canon) }
func (p publicHeaders) clientIPs(n hname) []string { return p.h.Values(n.canon) }

// canonicalHeaders reads an http.Header by canonical name, without
// http.Header.Get's canonicalization of the name on every request: net/http
// canonicalizes the names it receives. (One pass over the map instead of a
// lookup per name was measured slower, even for a request of three
// headers: Go's map iteration costs more than the lookups it saves.)
type canonicalHeaders http.Header

func (h canonicalHeaders) authorization() string      { return h.get(hAuthorization.canon) }
func (h canonicalHeaders) device(n hname) string      { return h.get(n.canon) }
func (h canonicalHeaders) clientIPs(n hname) []string { return h[n.canon] }

func (h canonicalHeaders) get(canon string) string {
	if v := h[canon]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// envoyHeaders reads Envoy's header map (lower-case names; repeated
// headers joined with commas).
type envoyHeaders map[string]string

func (h envoyHeaders) authorization() string { return h[hAuthorization.lower] }
func (h envoyHeaders) device(n hname) string { return h[n.lower] }

func (h envoyHeaders) clientIPs(n hname) []string {
	if v, ok := h[n.lower]; ok {
		return []string{v}
	}
	return nil
}
