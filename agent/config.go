package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis-dev/portcullis/clientip"
	"github.com/portcullis-dev/portcullis/ident"
)

// Config is what the agent decides with: the routes that need a
// capability, the public routes, and where a request's client address and
// device come from. It is the YAML file of `portcullis agent --config`,
// reloaded on SIGHUP (Agent.Reload).
type Config struct {
	// Routes map a method and path prefix to the capability a request
	// needs ("post"): a capability ban on it refuses the request with
	// CAPABILITY_RESTRICTED. The longest matching prefix wins; on equal
	// prefixes a route naming the method wins over one for any method. A
	// request no route matches needs a valid session and no capability.
	Routes []Route `yaml:"routes"`
	// Public routes need no token; they are answered 200 with no identity.
	Public []PublicRoute `yaml:"public"`
	// TrustedProxies are the prefixes whose ClientIPHeader is believed
	// (package clientip: right-most untrusted address). Absent: loopback
	// (127.0.0.0/8 and ::1), the gateway on the agent's own host; an
	// empty list trusts no one.
	TrustedProxies *[]string `yaml:"trusted_proxies"`
	// ClientIPHeader is the header trusted proxies name the client in
	// (default X-Forwarded-For; X-Real-IP works too).
	ClientIPHeader string `yaml:"client_ip_header"`
	// DeviceHeader, when set, names a header whose value is checked
	// against device bans, besides the token's did claim.
	DeviceHeader string `yaml:"device_header"`
}

// Route is a path prefix, optionally for one method, and the capability
// its requests need.
type Route struct {
	Method     string `yaml:"method"` // "" or "*": any method; GET also covers HEAD
	PathPrefix string `yaml:"path_prefix"`
	Capability string `yaml:"capability"`
}

// PublicRoute is a path prefix, optionally for one method, that needs no
// token.
type PublicRoute struct {
	Method     string `yaml:"method"`
	PathPrefix string `yaml:"path_prefix"`
}

// LoadConfig reads and validates a YAML configuration file. Unknown keys
// are an error, so that a typo ("trusted_proxys") is not a silent default.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return ParseConfig(b)
}

// ParseConfig decodes and validates a YAML configuration.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file, the defaults
		return Config{}, fmt.Errorf("agent config: %w", err)
	}
	if _, err := compile(c); err != nil {
		return Config{}, err
	}
	return c, nil
}

// compiled is a validated Config, ready for decisions; replaced whole on
// reload.
type compiled struct {
	routes       []route // longest prefix first; a method before any method
	public       []route
	trusted      []netip.Prefix
	ipHeader     hname
	deviceHeader hname // zero for none
}

type route struct {
	method     string // "" = any
	prefix     string // cleaned, no trailing slash but "/"
	capability string
}

var loopback = []string{"127.0.0.0/8", "::1/128"}

func compile(c Config) (*compiled, error) {
	var errs []error
	out := &compiled{ipHeader: newHName("X-Forwarded-For")}
	if c.ClientIPHeader != "" {
		out.ipHeader = newHName(c.ClientIPHeader)
	}
	if c.DeviceHeader != "" {
		out.deviceHeader = newHName(c.DeviceHeader)
	}
	proxies := loopback
	if c.TrustedProxies != nil {
		proxies = *c.TrustedProxies
	}
	for _, s := range proxies {
		p, err := parsePrefix(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("trusted_proxies: %q: %w", s, err))
			continue
		}
		out.trusted = append(out.trusted, p)
	}
	for i, r := range c.Routes {
		rt, err := newRoute(r.Method, r.PathPrefix)
		if err == nil {
			err = ident.CheckName(r.Capability)
			if err != nil {
				err = fmt.Errorf("capability %q %w", r.Capability, err)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("routes[%d]: %w", i, err))
			continue
		}
		rt.capability = r.Capability
		out.routes = append(out.routes, rt)
	}
	for i, r := range c.Public {
		rt, err := newRoute(r.Method, r.PathPrefix)
		if err != nil {
			errs = append(errs, fmt.Errorf("public[%d]: %w", i, err))
			continue
		}
		out.public = append(out.public, rt)
	}
	// A capability route under a public one would never be checked: the
	// same mistake the interceptors refuse (a public method with a
	// capability).
	for _, r := range out.routes {
		for _, p := range out.public {
			if covers(p, r) {
				errs = append(errs, fmt.Errorf("route %s %s (capability %q) is under public route %s %s: its capability would never be checked",
					methodName(r.method), r.prefix, r.capability, methodName(p.method), p.prefix))
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("agent config: %w", errors.Join(errs...))
	}
	order := func(a, b route) int {
		if d := len(b.prefix) - len(a.prefix); d != 0 {
			return d
		}
		return len(b.method) - len(a.method)
	}
	slices.SortStableFunc(out.routes, order)
	slices.SortStableFunc(out.public, order)
	return out, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil {
			return netip.Prefix{}, err
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	q, ok := clientip.Prefix(p)
	if !ok {
		return netip.Prefix{}, errors.New("invalid prefix")
	}
	return q, nil
}

func newRoute(method, prefix string) (route, error) {
	m := strings.ToUpper(strings.TrimSpace(method))
	if m == "*" {
		m = ""
	}
	if strings.ContainsFunc(m, func(r rune) bool { return r < 'A' || r > 'Z' }) {
		return route{}, fmt.Errorf("method %q is not an HTTP method", method)
	}
	clean, ok := cleanPath(prefix)
	if !ok || !strings.HasPrefix(prefix, "/") {
		return route{}, fmt.Errorf("path_prefix %q: want an absolute path (/api/posts)", prefix)
	}
	return route{method: m, prefix: clean}, nil
}

// covers reports whether every request route r matches is also matched by p.
func covers(p, r route) bool {
	return (p.method == "" || p.method == r.method) && underPrefix(r.prefix, p.prefix)
}

func methodName(m string) string {
	if m == "" {
		return "*"
	}
	return m
}
