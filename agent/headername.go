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

// headerSource is how Decide reads a front door's headers: by a name
// already in the door's form.
type headerSource interface {
	get(n hname) string
	values(n hname) []string
}

// publicHeaders adapts a caller's Headers (Decide's exported input) to
// headerSource, by canonical name.
type publicHeaders struct{ h Headers }

func (p publicHeaders) get(n hname) string      { return p.h.Get(n.canon) }
func (p publicHeaders) values(n hname) []string { return p.h.Values(n.canon) }

// canonicalHeaders reads an http.Header by canonical name, without
// http.Header.Get's canonicalization of the name on every request: net/http
// canonicalizes the names it receives.
type canonicalHeaders http.Header

func (h canonicalHeaders) get(n hname) string {
	if v := h[n.canon]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (h canonicalHeaders) values(n hname) []string { return h[n.canon] }

// envoyHeaders reads Envoy's header map (lower-case names; repeated
// headers joined with commas).
type envoyHeaders map[string]string

func (h envoyHeaders) get(n hname) string { return h[n.lower] }

func (h envoyHeaders) values(n hname) []string {
	if v, ok := h[n.lower]; ok {
		return []string{v}
	}
	return nil
}
