package authority

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/token"
)

// Defaults and bounds of an external issuer's settings.
const (
	DefaultIssuerLeeway      = time.Minute
	MaxIssuerLeeway          = 5 * time.Minute
	DefaultIssuerMaxLifetime = 24 * time.Hour
	MaxIssuerMaxLifetime     = 30 * 24 * time.Hour
	minIssuerMaxLifetime     = time.Minute
	maxIssuerAudiences       = 16
	maxIssuerURLLen          = 512
	maxClaimNameLen          = 64
)

// IssuerSettings are the settings of an external issuer an operator
// chooses; zero fields take the defaults.
type IssuerSettings struct {
	URL              string
	TenantID         string
	Audiences        []string
	UserClaim        string
	SessionClaim     string
	Algorithms       []string
	Leeway           time.Duration
	MaxTokenLifetime time.Duration
}

// checkIssuerSettings validates s and fills in the defaults.
func (a *Authority) checkIssuerSettings(s IssuerSettings) (IssuerSettings, error) {
	if err := a.checkIssuerURL("issuer", s.URL); err != nil {
		return s, err
	}
	if s.TenantID == "" {
		return s, invalid("tenant_id", "is required: the tenant the issuer's users belong to")
	}
	t, err := tenant(s.TenantID, false)
	if err != nil {
		return s, err
	}
	s.TenantID = t
	if len(s.Audiences) == 0 {
		return s, invalid("audiences", "name at least one audience the issuer's tokens carry in aud")
	}
	if len(s.Audiences) > maxIssuerAudiences {
		return s, invalid("audiences", "at most %d", maxIssuerAudiences)
	}
	for _, aud := range s.Audiences {
		if aud == "" {
			return s, invalid("audiences", "an audience is empty")
		}
		if err := checkText("audiences", aud); err != nil {
			return s, err
		}
	}
	s.Audiences = slices.Compact(slices.Sorted(slices.Values(s.Audiences)))
	for field, v := range map[string]*string{"user_claim": &s.UserClaim, "session_claim": &s.SessionClaim} {
		if *v == "" {
			*v = map[string]string{"user_claim": "sub", "session_claim": "sid"}[field]
		}
		if len(*v) > maxClaimNameLen {
			return s, invalid(field, "is longer than %d bytes", maxClaimNameLen)
		}
		if err := checkText(field, *v); err != nil {
			return s, err
		}
	}
	if len(s.Algorithms) == 0 {
		s.Algorithms = slices.Clone(token.ExternalAlgorithms)
	}
	for _, alg := range s.Algorithms {
		if !slices.Contains(token.ExternalAlgorithms, alg) {
			why := "unknown"
			if strings.EqualFold(alg, "none") || strings.HasPrefix(strings.ToUpper(alg), "HS") {
				why = "never accepted (unsigned or symmetric: anyone holding the public key could forge tokens)"
			}
			return s, invalid("algorithms", "%.32q is %s; choose among %s", alg, why, strings.Join(token.ExternalAlgorithms, ", "))
		}
	}
	s.Algorithms = slices.Compact(slices.Sorted(slices.Values(s.Algorithms)))
	switch {
	case s.Leeway == 0:
		s.Leeway = DefaultIssuerLeeway
	case s.Leeway < 0 || s.Leeway > MaxIssuerLeeway:
		return s, invalid("leeway", "must be between 0 and %s", MaxIssuerLeeway)
	}
	switch {
	case s.MaxTokenLifetime == 0:
		s.MaxTokenLifetime = DefaultIssuerMaxLifetime
	case s.MaxTokenLifetime < minIssuerMaxLifetime || s.MaxTokenLifetime > MaxIssuerMaxLifetime:
		return s, invalid("max_token_lifetime", "must be between %s and %s", minIssuerMaxLifetime, MaxIssuerMaxLifetime)
	}
	return s, nil
}

// checkIssuerURL accepts an absolute https URL without query, fragment or
// user info, or an http one on a loopback host (or any host when the
// authority allows insecure issuers): keys fetched in plaintext could be
// replaced by anyone on the path.
func (a *Authority) checkIssuerURL(field, raw string) error {
	if raw == "" {
		return invalid(field, "is required")
	}
	if len(raw) > maxIssuerURLLen {
		return invalid(field, "is longer than %d bytes", maxIssuerURLLen)
	}
	if err := checkText(field, raw); err != nil {
		return err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return invalid(field, "is not a URL: %v", err)
	}
	switch {
	case u.Host == "" || !u.IsAbs():
		return invalid(field, "%.128q is not an absolute URL", raw)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Contains(raw, "#"):
		return invalid(field, "%.128q has user info, a query or a fragment; an issuer URL has none", raw)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && (isLoopbackHost(u.Hostname()) || a.cfg.InsecureIssuers):
		return nil
	case u.Scheme == "http":
		return invalid(field, "%.128q is plain http on a non-loopback host: use https (serve --insecure allows it)", raw)
	}
	return invalid(field, "%.128q: the scheme must be https", raw)
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// CreateIssuer trusts an external issuer: it fetches its discovery
// document and JWKS first (an issuer whose keys cannot be fetched is
// refused), then stores it, audited ("issuer.create"), and emits
// issuer.updated so that every mirror learns its keys.
func (a *Authority) CreateIssuer(ctx context.Context, actor Actor, s IssuerSettings) (storage.Issuer, error) {
	s, err := a.checkIssuerSettings(s)
	if err != nil {
		return storage.Issuer{}, err
	}
	if err := a.View(ctx, func(tx storage.ReadTx) error {
		_, err := tx.Issuer(s.URL)
		if err == nil {
			return fmt.Errorf("%w: issuer %s is already trusted; update or delete it", ErrAlreadyExists, s.URL)
		}
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		return err
	}); err != nil {
		return storage.Issuer{}, err
	}
	rec := storage.Issuer{
		URL: s.URL, TenantID: s.TenantID, Audiences: s.Audiences, UserClaim: s.UserClaim, SessionClaim: s.SessionClaim,
		Algorithms: s.Algorithms, Leeway: s.Leeway, MaxTokenLifetime: s.MaxTokenLifetime, CreatedBy: actor.Name,
	}
	f, err := a.fetchIssuerKeys(ctx, rec)
	if err != nil {
		return storage.Issuer{}, invalid("issuer", "fetching the keys of %s failed: %v", s.URL, err)
	}
	now := a.now()
	rec.CreateTime, rec.UpdateTime = now, now
	rec.JWKSURI, rec.Keys = f.jwksURI, f.keys
	rec.LastSuccessTime, rec.NextFetchTime = now, now.Add(f.maxAge)
	_, err = a.store.Update(ctx, func(tx storage.Tx) error {
		if _, err := tx.Issuer(s.URL); err == nil {
			return fmt.Errorf("%w: issuer %s is already trusted; update or delete it", ErrAlreadyExists, s.URL)
		} else if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if err := tx.PutIssuer(rec); err != nil {
			return err
		}
		if err := tx.Emit(storage.Event{Kind: storage.EventIssuerUpdated, Time: now, Issuer: eventIssuer(rec)}); err != nil {
			return err
		}
		return tx.AppendAudit(issuerAudit("issuer.create", actor, rec, now))
	})
	if err != nil {
		return storage.Issuer{}, err
	}
	a.kickIssuerFetcher()
	return rec, nil
}

// UpdateIssuer replaces an issuer's settings and fetches its keys again
// (keeping the stored ones if that fails), audited ("issuer.update").
func (a *Authority) UpdateIssuer(ctx context.Context, actor Actor, s IssuerSettings) (storage.Issuer, error) {
	s, err := a.checkIssuerSettings(s)
	if err != nil {
		return storage.Issuer{}, err
	}
	old, err := a.GetIssuer(ctx, s.URL)
	if err != nil {
		return storage.Issuer{}, err
	}
	probe := old
	probe.Algorithms = s.Algorithms
	f, ferr := a.fetchIssuerKeys(ctx, probe)
	now := a.now()
	var rec storage.Issuer
	_, err = a.store.Update(ctx, func(tx storage.Tx) error {
		cur, err := tx.Issuer(s.URL)
		if err != nil {
			return issuerNotFound(err, s.URL)
		}
		rec = cur
		rec.TenantID, rec.Audiences, rec.UserClaim, rec.SessionClaim = s.TenantID, s.Audiences, s.UserClaim, s.SessionClaim
		rec.Algorithms, rec.Leeway, rec.MaxTokenLifetime, rec.UpdateTime = s.Algorithms, s.Leeway, s.MaxTokenLifetime, now
		applyFetch(&rec, f, ferr, now)
		if err := tx.PutIssuer(rec); err != nil {
			return err
		}
		if err := tx.Emit(storage.Event{Kind: storage.EventIssuerUpdated, Time: now, Issuer: eventIssuer(rec)}); err != nil {
			return err
		}
		return tx.AppendAudit(issuerAudit("issuer.update", actor, rec, now))
	})
	return rec, err
}

// DeleteIssuer stops trusting an issuer, audited ("issuer.delete").
func (a *Authority) DeleteIssuer(ctx context.Context, actor Actor, issuerURL string) error {
	if err := checkText("issuer", issuerURL); err != nil {
		return err
	}
	now := a.now()
	_, err := a.store.Update(ctx, func(tx storage.Tx) error {
		rec, err := tx.Issuer(issuerURL)
		if err != nil {
			return issuerNotFound(err, issuerURL)
		}
		if err := tx.DeleteIssuer(issuerURL); err != nil {
			return err
		}
		if err := tx.Emit(storage.Event{Kind: storage.EventIssuerDeleted, Time: now, Issuer: &storage.Issuer{URL: issuerURL}}); err != nil {
			return err
		}
		return tx.AppendAudit(issuerAudit("issuer.delete", actor, rec, now))
	})
	return err
}

// GetIssuer reads one issuer.
func (a *Authority) GetIssuer(ctx context.Context, issuerURL string) (storage.Issuer, error) {
	if err := checkText("issuer", issuerURL); err != nil {
		return storage.Issuer{}, err
	}
	var rec storage.Issuer
	err := a.View(ctx, func(tx storage.ReadTx) error {
		var err error
		rec, err = tx.Issuer(issuerURL)
		return issuerNotFound(err, issuerURL)
	})
	return rec, err
}

// ListIssuers lists every issuer, by URL.
func (a *Authority) ListIssuers(ctx context.Context) ([]storage.Issuer, error) {
	var out []storage.Issuer
	err := a.View(ctx, func(tx storage.ReadTx) error {
		out = nil
		for i, err := range tx.Issuers() {
			if err != nil {
				return err
			}
			out = append(out, i)
		}
		return nil
	})
	return out, err
}

// View runs fn in a read transaction of the authority's store.
func (a *Authority) View(ctx context.Context, fn func(storage.ReadTx) error) error {
	return a.store.View(ctx, fn)
}

func issuerNotFound(err error, issuerURL string) error {
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: no trusted issuer %.200q", ErrNotFound, issuerURL)
	}
	return err
}

// eventIssuer is what an event carries of an issuer: everything but the
// fetch status, which mirrors do not need.
func eventIssuer(rec storage.Issuer) *storage.Issuer {
	rec.LastSuccessTime, rec.LastErrorTime, rec.LastError, rec.NextFetchTime = time.Time{}, time.Time{}, "", time.Time{}
	return &rec
}

func issuerAudit(action string, actor Actor, rec storage.Issuer, now time.Time) storage.AuditRecord {
	kids := make([]string, len(rec.Keys))
	for i, k := range rec.Keys {
		kids[i] = k.ID
	}
	return storage.AuditRecord{
		ID: newID("aud_", now), Time: now, Action: action, Actor: actor.Name, ActorAddr: actor.Addr, Channel: actor.Channel,
		TenantID: rec.TenantID, Subject: "issuer:" + rec.URL, TargetID: rec.URL,
		Details: map[string]string{
			"audiences": strings.Join(rec.Audiences, " "), "algorithms": strings.Join(rec.Algorithms, " "),
			"user_claim": rec.UserClaim, "session_claim": rec.SessionClaim, "key_ids": strings.Join(kids, " "),
			"max_token_lifetime": rec.MaxTokenLifetime.String(), "leeway": rec.Leeway.String(),
		},
	}
}
