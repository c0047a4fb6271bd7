package agent

import (
	"net/url"
	"path"
	"strings"
)

// cleanPath returns the path of a request URI as the routes are matched
// against it: without query or fragment, percent-decoded, with dot
// segments and repeated slashes resolved (as nginx resolves them before it
// picks a location), without a trailing slash (but "/"). A gateway passes
// the raw URI ($request_uri), so "/public/../admin" and "/public%2F..%2Fadmin"
// must be /admin here, or a public prefix would let them through. A
// decoded %2F is a slash like any other: "/api%2Fposts" is /api/posts,
// so a capability route cannot be side-stepped by encoding. ok is false
// for a URI that is not an absolute path or has a malformed escape.
func cleanPath(uri string) (string, bool) {
	if len(uri) == 0 || uri[0] != '/' {
		return "", false
	}
	// One pass finds the end of the path and whether it is clean already
	// (no escape, no "//", no dot segment, no trailing slash), the common
	// case, which needs nothing else.
	clean := true
	end := len(uri)
	for i := 0; i < len(uri); i++ {
		c := uri[i]
		if c == '?' || c == '#' {
			end = i
			break
		}
		if c == '%' || (c == '/' && i+1 < len(uri) && (uri[i+1] == '/' || uri[i+1] == '.')) {
			clean = false
		}
	}
	uri = uri[:end]
	if clean && (len(uri) == 1 || uri[len(uri)-1] != '/') {
		return uri, true
	}
	if strings.IndexByte(uri, '%') >= 0 {
		u, err := url.PathUnescape(uri)
		if err != nil {
			return "", false
		}
		uri = u
	}
	// path.Clean allocates only when it changes something.
	return path.Clean(uri), true
}

// underPrefix reports whether the cleaned path p is prefix or below it,
// segment by segment: /api/posts is under /api, /apis is not.
func underPrefix(p, prefix string) bool {
	if prefix == "/" {
		return true
	}
	return strings.HasPrefix(p, prefix) && (len(p) == len(prefix) || p[len(prefix)] == '/')
}

// matches reports whether r applies to a request of method to the cleaned
// path p. A route for GET covers HEAD, which is a GET without a body.
func (r *route) matches(method, p string) bool {
	if r.method != "" && r.method != method && (r.method != "GET" || method != "HEAD") {
		return false
	}
	return underPrefix(p, r.prefix)
}
