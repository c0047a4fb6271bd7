package authority

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/token"
)

// The fetcher of external issuers' keys. Every replica runs it
// (RunIssuerFetcher): it fetches an issuer's discovery document and JWKS
// when the last fetch's Cache-Control max-age (bounded) has passed, or
// sooner when a token names a key the issuer does not have (at most once
// per issuerMinRefresh), and stores the keys. Only a change of the keys
// emits issuer.updated (and is audited as "issuer.keys"), so replicas that
// fetch the same JWKS write one event. A failed fetch keeps the last good
// keys and records the error in the issuer's fetch status (issuers list,
// and the authority's metrics); nothing else depends on the IdP.
const (
	issuerFetchTimeout   = 10 * time.Second // one discovery + JWKS fetch
	issuerMaxBody        = 1 << 20          // per document
	issuerMinRefresh     = time.Minute      // bounds max-age below, and unknown-kid refetches
	issuerMaxRefresh     = 24 * time.Hour   // bounds max-age above
	issuerDefaultRefresh = 15 * time.Minute // without a usable Cache-Control
	issuerRetry          = time.Minute      // after a failure
	maxIssuerKeys        = 32
	maxIssuerErrorLen    = 512
	issuerFetcherTick    = time.Minute // how often the fetcher looks for issuers other replicas added
)

// issuerState is the fetcher's in-memory state.
type issuerState struct {
	mu     sync.Mutex
	forced map[string]time.Time // issuer URL -> last unknown-kid refetch asked
	due    map[string]bool      // refetch asked, not yet done
	kick   chan struct{}        // wakes the fetcher (buffered, 1)
	counts map[string]*IssuerFetchCounts
}

// IssuerFetchCounts counts one issuer's fetches by this replica.
type IssuerFetchCounts struct {
	Successes, Failures uint64
}

func (s *issuerState) init() {
	if s.kick == nil {
		s.kick = make(chan struct{}, 1)
		s.forced, s.due, s.counts = map[string]time.Time{}, map[string]bool{}, map[string]*IssuerFetchCounts{}
	}
}

func (a *Authority) kickIssuerFetcher() {
	a.issuers.mu.Lock()
	a.issuers.init()
	a.issuers.mu.Unlock()
	select {
	case a.issuers.kick <- struct{}{}:
	default:
	}
}

// IssuerKeyMissing tells the fetcher that a token named a key the issuer
// is not known to have: it refetches the issuer's keys, at most once per
// issuerMinRefresh per issuer, in the background.
func (a *Authority) IssuerKeyMissing(issuerURL string) {
	now := a.now()
	s := &a.issuers
	s.mu.Lock()
	s.init()
	if last, ok := s.forced[issuerURL]; ok && now.Sub(last) < issuerMinRefresh {
		s.mu.Unlock()
		return
	}
	s.forced[issuerURL], s.due[issuerURL] = now, true
	s.mu.Unlock()
	a.kickIssuerFetcher()
}

// IssuerFetchStats returns this replica's fetch counts by issuer URL.
func (a *Authority) IssuerFetchStats() map[string]IssuerFetchCounts {
	s := &a.issuers
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]IssuerFetchCounts, len(s.counts))
	for u, c := range s.counts {
		out[u] = *c
	}
	return out
}

func (a *Authority) countFetch(issuerURL string, err error) {
	s := &a.issuers
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	c := s.counts[issuerURL]
	if c == nil {
		c = &IssuerFetchCounts{}
		s.counts[issuerURL] = c
	}
	if err != nil {
		c.Failures++
	} else {
		c.Successes++
	}
}

// RunIssuerFetcher keeps every issuer's keys current until ctx ends.
func (a *Authority) RunIssuerFetcher(ctx context.Context) {
	a.kickIssuerFetcher() // initialises the state, and a first pass at once
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.issuers.kick:
		case <-time.After(issuerFetcherTick):
		}
		a.RefreshDueIssuers(ctx)
	}
}

// RefreshDueIssuers fetches the keys of every issuer whose next fetch time
// has come, or whose refetch was asked (IssuerKeyMissing), and sweeps the
// external revocations past their time.
func (a *Authority) RefreshDueIssuers(ctx context.Context) {
	if err := a.sweepExternalRevocations(ctx); err != nil && ctx.Err() == nil {
		a.log.Warn("sweeping external revocations", "error", err)
	}
	list, err := a.ListIssuers(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("listing external issuers", "error", err)
		}
		return
	}
	now := a.now()
	for _, rec := range list {
		s := &a.issuers
		s.mu.Lock()
		s.init()
		asked := s.due[rec.URL]
		delete(s.due, rec.URL)
		s.mu.Unlock()
		if !asked && now.Before(rec.NextFetchTime) {
			continue
		}
		if err := a.RefreshIssuer(ctx, rec.URL); err != nil && ctx.Err() == nil {
			a.log.Warn("fetching an external issuer's keys; keeping the last good ones", "issuer", rec.URL, "error", err)
		}
	}
}

// RefreshIssuer fetches one issuer's keys now and stores the result: new
// keys (an issuer.updated event, audited as "issuer.keys"), or the error,
// keeping the last good keys. It returns the fetch's error.
func (a *Authority) RefreshIssuer(ctx context.Context, issuerURL string) error {
	rec, err := a.GetIssuer(ctx, issuerURL)
	if err != nil {
		return err
	}
	f, ferr := a.fetchIssuerKeys(ctx, rec)
	a.countFetch(issuerURL, ferr)
	now := a.now()
	_, err = a.store.Update(ctx, func(tx storage.Tx) error {
		cur, err := tx.Issuer(issuerURL)
		if errors.Is(err, storage.ErrNotFound) {
			return nil // deleted meanwhile
		} else if err != nil {
			return err
		}
		if !applyFetch(&cur, f, ferr, now) {
			return tx.PutIssuer(cur)
		}
		if err := tx.PutIssuer(cur); err != nil {
			return err
		}
		if err := tx.Emit(storage.Event{Kind: storage.EventIssuerUpdated, Time: now, Issuer: eventIssuer(cur)}); err != nil {
			return err
		}
		return tx.AppendAudit(issuerAudit("issuer.keys", System, cur, now))
	})
	if err != nil {
		return err
	}
	return ferr
}

// applyFetch records a fetch's outcome in rec and reports whether its keys
// changed (an event is due).
func applyFetch(rec *storage.Issuer, f issuerFetch, err error, now time.Time) bool {
	if err != nil {
		msg := err.Error()
		if len(msg) > maxIssuerErrorLen {
			msg = msg[:maxIssuerErrorLen]
		}
		rec.LastError, rec.LastErrorTime, rec.NextFetchTime = msg, now, now.Add(issuerRetry)
		return false
	}
	changed := rec.JWKSURI != f.jwksURI || !slices.EqualFunc(rec.Keys, f.keys, func(x, y storage.IssuerKey) bool {
		return x.ID == y.ID && slices.Equal(x.Algorithms, y.Algorithms) && string(x.PublicKey) == string(y.PublicKey)
	})
	rec.JWKSURI, rec.Keys = f.jwksURI, f.keys
	rec.LastSuccessTime, rec.LastError, rec.LastErrorTime = now, "", time.Time{}
	rec.NextFetchTime = now.Add(f.maxAge)
	if changed {
		rec.UpdateTime = now
	}
	return changed
}

// issuerFetch is what one fetch found.
type issuerFetch struct {
	jwksURI string
	keys    []storage.IssuerKey
	maxAge  time.Duration
}

// fetchIssuerKeys fetches rec's discovery document, checks that it names
// rec.URL as its issuer, then fetches its JWKS and keeps the usable keys.
func (a *Authority) fetchIssuerKeys(ctx context.Context, rec storage.Issuer) (issuerFetch, error) {
	ctx, cancel := context.WithTimeout(ctx, issuerFetchTimeout)
	defer cancel()
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	discovery := strings.TrimSuffix(rec.URL, "/") + "/.well-known/openid-configuration"
	if _, err := a.getJSON(ctx, discovery, &doc); err != nil {
		return issuerFetch{}, fmt.Errorf("discovery: %w", err)
	}
	if doc.Issuer != rec.URL {
		return issuerFetch{}, fmt.Errorf("discovery names issuer %.200q, not %q", doc.Issuer, rec.URL)
	}
	if err := a.checkFetchURL(doc.JWKSURI); err != nil {
		return issuerFetch{}, fmt.Errorf("discovery: jwks_uri: %w", err)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	maxAge, err := a.getJSON(ctx, doc.JWKSURI, &set)
	if err != nil {
		return issuerFetch{}, fmt.Errorf("jwks: %w", err)
	}
	keys, err := usableKeys(set.Keys, rec.Algorithms)
	if err != nil {
		return issuerFetch{}, fmt.Errorf("jwks: %w", err)
	}
	return issuerFetch{jwksURI: doc.JWKSURI, keys: keys, maxAge: maxAge}, nil
}

// usableKeys parses a JWKS's keys with go-jose and keeps the public
// signature keys with a kid that verify one of algs, bound to those
// algorithms (the JWK's own "alg" when it has one). A key it cannot use
// is skipped, not fatal: IdPs publish encryption keys too.
func usableKeys(raw []json.RawMessage, algs []string) ([]storage.IssuerKey, error) {
	var out []storage.IssuerKey
	for _, r := range raw {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil || k.KeyID == "" || !k.IsPublic() || !k.Valid() {
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		keyAlgs := algs
		if k.Algorithm != "" {
			if !slices.Contains(algs, k.Algorithm) {
				continue
			}
			keyAlgs = []string{k.Algorithm}
		}
		der, err := x509.MarshalPKIXPublicKey(k.Key)
		if err != nil {
			continue
		}
		ek, err := token.ParseExternalKey(der, keyAlgs)
		if err != nil {
			continue
		}
		if slices.ContainsFunc(out, func(x storage.IssuerKey) bool { return x.ID == k.KeyID }) {
			continue // a kid twice: the first wins
		}
		out = append(out, storage.IssuerKey{ID: k.KeyID, Algorithms: ek.Algorithms, PublicKey: der})
		if len(out) == maxIssuerKeys {
			break
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no usable signing key among %d (a kid, a public RSA >= 2048 bits, P-256 or Ed25519 key, for one of %v)", len(raw), algs)
	}
	slices.SortFunc(out, func(x, y storage.IssuerKey) int { return strings.Compare(x.ID, y.ID) })
	return out, nil
}

// checkFetchURL applies the issuer URL's transport rule to a URL the
// authority fetches (jwks_uri may have a query).
func (a *Authority) checkFetchURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return err
	case u.Host == "" || !u.IsAbs():
		return fmt.Errorf("%.200q is not an absolute URL", raw)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && (isLoopbackHost(u.Hostname()) || a.cfg.InsecureIssuers):
		return nil
	}
	return fmt.Errorf("%.200q: https required (http only on loopback, or with serve --insecure)", raw)
}

// getJSON fetches a JSON document of at most issuerMaxBody bytes and
// returns its Cache-Control max-age, bounded.
func (a *Authority) getJSON(ctx context.Context, target string, v any) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := a.issuerHTTP().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", target, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != "application/json" && mt != "application/jwk-set+json") {
			return 0, fmt.Errorf("GET %s: content type %.64q, want application/json", target, ct)
		}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, issuerMaxBody+1))
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", target, err)
	}
	if len(body) > issuerMaxBody {
		return 0, fmt.Errorf("GET %s: larger than %d bytes", target, issuerMaxBody)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return 0, fmt.Errorf("GET %s: %w", target, err)
	}
	return maxAgeOf(resp.Header.Get("Cache-Control")), nil
}

// maxAgeOf reads a Cache-Control's max-age, bounded to
// [issuerMinRefresh, issuerMaxRefresh]; without one (or with no-cache,
// no-store), issuerDefaultRefresh, or the lower bound for no-cache.
func maxAgeOf(cc string) time.Duration {
	d := issuerDefaultRefresh
	for _, part := range strings.Split(cc, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(strings.ToLower(part)), "=")
		switch k {
		case "no-cache", "no-store":
			return issuerMinRefresh
		case "max-age":
			if n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64); err == nil && n >= 0 {
				d = time.Duration(min(n, int64(issuerMaxRefresh/time.Second))) * time.Second
			}
		}
	}
	return min(max(d, issuerMinRefresh), issuerMaxRefresh)
}

// issuerHTTP is the client that fetches issuers' documents: the
// configured one (tests), or one with a timeout that follows redirects
// only to the same host, so that a compromised path cannot point the
// authority at another server's keys.
func (a *Authority) issuerHTTP() *http.Client {
	base := a.cfg.IssuerHTTPClient
	if base == nil {
		base = &http.Client{}
	}
	c := *base
	c.Timeout = issuerFetchTimeout
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		if req.URL.Host != via[0].URL.Host {
			return fmt.Errorf("redirect to another host (%s) refused", req.URL.Host)
		}
		return a.checkFetchURL(req.URL.String())
	}
	return &c
}
