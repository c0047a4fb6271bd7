package console

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

// The pages other than bans: audit, sessions, fleet, signing keys and API
// keys. Each lists through the domain, a page at a time.

const pageSize = 50

// pager is a listing's links: to its first page and to the next.
type pager struct{ First, Next string }

func pageLinks(path string, q url.Values, cursor, next string) pager {
	var p pager
	if next != "" {
		q.Set("cursor", next)
		p.Next = path + "?" + q.Encode()
	}
	if cursor != "" {
		q.Del("cursor")
		p.First = path + "?" + q.Encode()
	}
	return p
}

// nonEmpty keeps the query's non-empty values (so links stay short).
func nonEmpty(q url.Values, keys ...string) url.Values {
	out := url.Values{}
	for _, k := range keys {
		if v := q.Get(k); v != "" {
			out.Set(k, v)
		}
	}
	return out
}

type auditData struct {
	// LastHour and LastDay link the recent records: the listing is oldest
	// first and starts at its start time.
	LastHour, LastDay string
	Q                 map[string]string
	Records           []storage.AuditRecord
	Pager             pager
}

func (c *Console) auditPage(w http.ResponseWriter, r *request) {
	q := r.URL.Query()
	f := authority.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action"), Subject: q.Get("subject"), TenantID: q.Get("tenant"),
		Channel: q.Get("channel")}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(t.name); v != "" {
			tm, err := parseTime(v)
			if err != nil {
				c.fail(w, r, invalidf("%s: want RFC 3339 or YYYY-MM-DDTHH:MM (UTC)", t.name))
				return
			}
			*t.dst = tm
		}
	}
	recs, next, err := c.auth.ListAuditRecords(r.Context(), f, authority.Page{Size: pageSize, Token: q.Get("cursor")})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	keys := []string{"actor", "action", "subject", "tenant", "channel", "from", "to"}
	now := c.auth.Config().Clock().UTC()
	d := auditData{LastHour: "/console/audit?from=" + url.QueryEscape(now.Add(-time.Hour).Format(time.RFC3339)),
		LastDay: "/console/audit?from=" + url.QueryEscape(now.Add(-24*time.Hour).Format(time.RFC3339)), Q: map[string]string{}, Records: recs, Pager: pageLinks("/console/audit", nonEmpty(q, keys...), q.Get("cursor"), next)}
	for _, k := range keys {
		d.Q[k] = q.Get(k)
	}
	c.render(w, r, "audit", "Audit", d)
}

type sessionsData struct {
	Tenant, User string
	All          bool
	Sessions     []storage.Session
	Pager        pager
}

func (c *Console) sessionsPage(w http.ResponseWriter, r *request) {
	q := r.URL.Query()
	d := sessionsData{Tenant: q.Get("tenant"), User: q.Get("user"), All: q.Get("all") == "on"}
	if d.User != "" {
		ss, next, err := c.auth.ListSessions(r.Context(), authority.SessionFilter{TenantID: d.Tenant, UserID: d.User, IncludeInactive: d.All},
			authority.Page{Size: pageSize, Token: q.Get("cursor")})
		if err != nil {
			c.fail(w, r, err)
			return
		}
		d.Sessions = ss
		d.Pager = pageLinks("/console/sessions", nonEmpty(q, "tenant", "user", "all"), q.Get("cursor"), next)
	}
	c.render(w, r, "sessions", "Sessions", d)
}

func (c *Console) revokeSession(w http.ResponseWriter, r *request) {
	s, _, err := c.auth.RevokeSession(r.Context(), r.actor(), r.PathValue("id"), strings.TrimSpace(r.PostFormValue("reason")))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	redirect(w, r, "/console/sessions?"+url.Values{"tenant": {s.TenantID}, "user": {s.UserID}}.Encode(), "Session "+s.ID+" revoked.")
}

func (c *Console) revokeUser(w http.ResponseWriter, r *request) {
	tenant, user := strings.TrimSpace(r.PostFormValue("tenant")), strings.TrimSpace(r.PostFormValue("user"))
	n, _, err := c.auth.RevokeUserSessions(r.Context(), r.actor(), tenant, user, strings.TrimSpace(r.PostFormValue("reason")))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	redirect(w, r, "/console/sessions?"+url.Values{"tenant": {tenant}, "user": {user}}.Encode(),
		"Revoked "+itoa(n)+" sessions of "+user+".")
}

// fleetRow is one subscriber of this replica, or another replica's
// summary.
type fleetRow struct {
	Replica, Caller, Peer, Mirror string
	Reporting                     bool
	Sent, Applied, Lag            int64
	Staleness                     string
	Loading                       bool
}

type fleetData struct {
	Revision int64
	Replica  string
	Rows     []fleetRow
	Others   []fleetRow
}

func (c *Console) fleetData(r *request) (fleetData, error) {
	rev, err := c.auth.Revision(r.Context())
	if err != nil {
		return fleetData{}, err
	}
	now := c.auth.Config().Clock()
	d := fleetData{Revision: rev, Replica: c.cfg.Fleet.ReplicaID()}
	for _, s := range c.cfg.Fleet.Subscribers() {
		row := fleetRow{Replica: d.Replica, Caller: s.Caller, Peer: s.Peer, Sent: s.Revision(), Reporting: s.Reporting(), Loading: s.Loading() > 0}
		if s.Identity != nil {
			row.Mirror = s.Identity.Service + "/" + s.Identity.InstanceID
		}
		if s.Reporting() {
			row.Applied = s.Applied()
			row.Lag = max(rev-row.Applied, 0)
			if t, ok := s.LastReport(); ok {
				row.Staleness = now.Sub(t).Round(time.Millisecond).String()
			}
		}
		d.Rows = append(d.Rows, row)
	}
	slices.SortFunc(d.Rows, func(a, b fleetRow) int { return strings.Compare(a.Caller+a.Peer, b.Caller+b.Peer) })
	others, _ := c.cfg.Fleet.Others()
	for id, sum := range others {
		d.Others = append(d.Others, fleetRow{Replica: id, Applied: int64(sum.Mirrors)})
	}
	slices.SortFunc(d.Others, func(a, b fleetRow) int { return strings.Compare(a.Replica, b.Replica) })
	return d, nil
}

func (c *Console) fleetPage(w http.ResponseWriter, r *request) {
	d, err := c.fleetData(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, "fleet", "Fleet", d)
}

func (c *Console) keysPage(w http.ResponseWriter, r *request) {
	keys, err := c.auth.ListKeys(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, "keys", "Signing keys", keys)
}

func (c *Console) rotateKey(w http.ResponseWriter, r *request) {
	added, _, err := c.auth.RotateKey(r.Context(), r.actor(), "", strings.TrimSpace(r.PostFormValue("reason")))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	redirect(w, r, "/console/keys", "Key "+added.ID+" now signs.")
}

type apiKeysData struct {
	Keys   []storage.APIKey
	Scopes []string
	Secret string // of the key just created: shown once, never stored
	Name   string
}

func (c *Console) apiKeysPage(w http.ResponseWriter, r *request) {
	keys, err := c.auth.ListAPIKeys(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, "apikeys", "API keys", apiKeysData{Keys: keys, Scopes: authority.AllScopes})
}

// createAPIKey shows the new secret in the answer to the POST itself, not
// after a redirect: it is never in a URL, a log or the store, and a
// reload cannot show it again.
func (c *Console) createAPIKey(w http.ResponseWriter, r *request) {
	var expire *time.Time
	if v := strings.TrimSpace(r.PostFormValue("expire")); v != "" {
		t, err := parseTime(v)
		if err != nil {
			c.fail(w, r, invalidf("expire: want RFC 3339 or YYYY-MM-DDTHH:MM (UTC)"))
			return
		}
		expire = &t
	}
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, invalidf("%v", err))
		return
	}
	k, secret, err := c.auth.CreateAPIKey(r.Context(), r.actor(), strings.TrimSpace(r.PostFormValue("name")), r.PostForm["scope"], expire)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	keys, err := c.auth.ListAPIKeys(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, "apikeys", "API keys", apiKeysData{Keys: keys, Scopes: authority.AllScopes, Secret: secret, Name: k.Name})
}

func (c *Console) revokeAPIKey(w http.ResponseWriter, r *request) {
	k, err := c.auth.RevokeAPIKey(r.Context(), r.actor(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.sessions.endKey(k.ID)
	redirect(w, r, "/console/apikeys", "API key "+k.Name+" revoked.")
}
