package agent

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Options configure an Agent. Zero fields take the defaults.
type Options struct {
	// Config is the initial configuration (routes, public routes, trusted
	// proxies, headers); Reload replaces it.
	Config Config
	// StaleAfter is the mirror's staleness bound
	// (client.MirrorOptions.StaleAfter, default 30s): /readyz is not ready
	// past it. Give the mirror the same value.
	StaleAfter time.Duration
	// IntrospectSecrets are the credentials callers of /introspect present
	// (Authorization: Bearer <secret>, or Basic with the secret as
	// password). None: /introspect is not served.
	IntrospectSecrets []string
	// Issuer and Audience are reported by /introspect for active tokens
	// (iss, aud); the mirror is what checks them.
	Issuer, Audience string
	// Logger receives refusals (debug) and reloads (default slog.Default()).
	Logger *slog.Logger
}

// Agent decides requests for gateways from a local mirror. Its front doors
// are Handler (forward-auth /authz, /introspect, health, metrics) and
// RegisterExtAuthz (Envoy ext_authz v3); all of them call Decide.
type Agent struct {
	mirror     Mirror
	cfg        atomic.Pointer[compiled]
	staleAfter time.Duration
	secrets    [][]byte
	issuer     string
	audience   string
	log        *slog.Logger
	metrics    *metrics
	admitted   *admittedCache
}

// New returns an agent deciding with m (a *client.Mirror, running). It
// fails on an invalid configuration.
func New(m Mirror, opts Options) (*Agent, error) {
	if m == nil {
		return nil, fmt.Errorf("agent: nil Mirror")
	}
	a := &Agent{mirror: m, staleAfter: opts.StaleAfter, issuer: opts.Issuer, audience: opts.Audience, log: opts.Logger,
		admitted: newAdmittedCache()}
	if a.staleAfter <= 0 {
		a.staleAfter = 30 * time.Second
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	for _, s := range opts.IntrospectSecrets {
		if s == "" {
			return nil, fmt.Errorf("agent: an empty introspection secret")
		}
		a.secrets = append(a.secrets, []byte(s))
	}
	if err := a.Reload(opts.Config); err != nil {
		return nil, err
	}
	a.metrics = newMetrics(m)
	return a, nil
}

// Reload replaces the configuration, atomically: a decision uses the old
// one or the new one, never a mix. An invalid configuration is an error
// and leaves the current one in place. The mirror is not touched.
func (a *Agent) Reload(c Config) error {
	cc, err := compile(c)
	if err != nil {
		return err
	}
	a.cfg.Store(cc)
	return nil
}

// Ready reports whether decisions can succeed: the mirror has loaded its
// first snapshot and has heard from the authority within the staleness
// bound. why says what is missing.
func (a *Agent) Ready() (ok bool, why string) {
	st := a.mirror.Stats()
	switch {
	case st.StoreID == "":
		return false, "the mirror has not loaded its first snapshot"
	case st.Staleness > a.staleAfter:
		return false, fmt.Sprintf("the mirror has not heard from the authority for %s (bound %s)", st.Staleness.Round(time.Millisecond), a.staleAfter)
	}
	return true, ""
}
