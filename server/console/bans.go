package console

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

// banSearch is the bans page's query: the domain's filters (tenant, kind,
// state) and the console's (subject value, reason and policy, substrings,
// case-insensitive), which it applies to the domain's pages.
type banSearch struct {
	Tenant, Kind, State, Subject, Reason, Policy string
	Cursor                                       string
}

// banScanLimit bounds the bans one page request reads to fill a page
// under the console's filters; past it the page is shorter and offers
// "next", so that no request reads the whole store.
const banScanLimit = 20000

func (s banSearch) filter() (authority.BanFilter, error) {
	f := authority.BanFilter{TenantID: s.Tenant, Kind: storage.SubjectKind(s.Kind)}
	switch s.Kind {
	case "", "user", "ip", "device":
	default:
		return f, invalidf("kind must be user, ip or device")
	}
	if s.Kind != "" && s.Tenant == "" {
		return f, invalidf("filtering by kind needs a tenant (or * for every-tenant bans)")
	}
	switch s.State {
	case "", "any":
	case "active":
		f.State = authority.StateActive
	case "expired":
		f.State = authority.StateExpired
	case "lifted":
		f.State = authority.StateLifted
	default:
		return f, invalidf("state must be active, expired or lifted")
	}
	return f, nil
}

func (s banSearch) match(b storage.Ban) bool {
	has := func(field, want string) bool {
		return want == "" || strings.Contains(strings.ToLower(field), strings.ToLower(want))
	}
	return has(b.Value, s.Subject) && has(b.Reason, s.Reason) && has(b.Policy, s.Policy)
}

func (s banSearch) query(cursor string) string {
	v := url.Values{}
	for k, x := range map[string]string{"tenant": s.Tenant, "kind": s.Kind, "state": s.State, "subject": s.Subject,
		"reason": s.Reason, "policy": s.Policy, "cursor": cursor} {
		if x != "" {
			v.Set(k, x)
		}
	}
	return v.Encode()
}

// banRow is a listed ban with its state and enforcement.
type banRow struct {
	storage.Ban
	State       string
	Enforcement string
}

// searchBans reads one console page of bans: domain pages (of up to 1000)
// until pageSize match or banScanLimit were read. The cursor is the
// domain's page token of the next unread domain page, or, when a domain
// page was read only in part, the position within it ("token|n").
func (c *Console) searchBans(ctx context.Context, s banSearch, pageSize int) (rows []storage.Ban, next string, err error) {
	f, err := s.filter()
	if err != nil {
		return nil, "", err
	}
	token, skip, _ := strings.Cut(s.Cursor, "|")
	n, _ := strconv.Atoi(skip)
	scanned := 0
	for {
		bans, nextToken, err := c.auth.ListBans(ctx, f, authority.Page{Size: authority.MaxPageSize, Token: token})
		if err != nil {
			return nil, "", err
		}
		for i := n; i < len(bans); i++ {
			scanned++
			if s.match(bans[i]) {
				rows = append(rows, bans[i])
				if len(rows) == pageSize {
					if i+1 < len(bans) {
						return rows, token + "|" + strconv.Itoa(i+1), nil
					}
					return rows, nextToken, nil
				}
			}
		}
		n = 0
		if nextToken == "" || scanned >= banScanLimit {
			return rows, nextToken, nil
		}
		token = nextToken
	}
}

func stateName(b storage.Ban, now time.Time) string {
	switch authority.StateAt(b, now) {
	case authority.StateLifted:
		return "lifted"
	case authority.StateExpired:
		return "expired"
	}
	return "active"
}

type bansData struct {
	Search   banSearch
	Rows     []banRow
	Next     string
	First    string
	Error    string
	Revision int64
	LiveIDs  string
}

const bansPageSize = 50

func (c *Console) bansPage(w http.ResponseWriter, r *request) {
	q := r.URL.Query()
	s := banSearch{Tenant: q.Get("tenant"), Kind: q.Get("kind"), State: q.Get("state"), Subject: q.Get("subject"),
		Reason: q.Get("reason"), Policy: q.Get("policy"), Cursor: q.Get("cursor")}
	rev, err := c.auth.Revision(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	bans, next, err := c.searchBans(r.Context(), s, bansPageSize)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := bansData{Search: s, Revision: rev}
	if next != "" {
		d.Next = "/console/bans?" + s.query(next)
	}
	if s.Cursor != "" {
		d.First = "/console/bans?" + s.query("")
	}
	now := c.auth.Config().Clock()
	var ids []string
	for _, b := range bans {
		row := banRow{Ban: b, State: stateName(b, now)}
		if row.State == "active" {
			row.Enforcement = c.enforcement(r.Context(), b.ID, rev).Text
			ids = append(ids, b.ID)
		}
		d.Rows = append(d.Rows, row)
	}
	d.LiveIDs = "/console/live/bans?" + url.Values{"id": ids, "rev": {strconv.FormatInt(rev, 10)}}.Encode()
	c.render(w, r, "bans", "Bans", d)
}

// createBan creates a ban from the form and shows it, with the number of
// sessions it revoked.
func (c *Console) createBan(w http.ResponseWriter, r *request) {
	in := authority.BanInput{
		TenantID: strings.TrimSpace(r.PostFormValue("tenant")),
		Kind:     storage.SubjectKind(r.PostFormValue("kind")),
		Value:    strings.TrimSpace(r.PostFormValue("value")),
		Duration: strings.TrimSpace(r.PostFormValue("duration")),
		Reason:   strings.TrimSpace(r.PostFormValue("reason")),
		Policy:   strings.TrimSpace(r.PostFormValue("policy")),
	}
	if until := strings.TrimSpace(r.PostFormValue("until")); until != "" {
		t, err := parseTime(until)
		if err != nil {
			c.fail(w, r, invalidf("until: %v", err))
			return
		}
		in.ExpireTime = &t
	}
	for cap := range strings.SplitSeq(r.PostFormValue("capabilities"), ",") {
		if cap = strings.TrimSpace(cap); cap != "" {
			in.Capabilities = append(in.Capabilities, cap)
		}
	}
	ban, wr, err := c.auth.CreateBan(r.Context(), r.actor(), in)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.revs.put(ban.ID, wr.Revision)
	redirect(w, r, "/console/bans/"+ban.ID, "Ban "+ban.ID+" created; sessions revoked: "+strconv.Itoa(wr.RevokedSessions)+".")
}

type banData struct {
	Ban      banRow
	Audit    []storage.AuditRecord
	AuditURL string
	LiveURL  string
	Rollout  []mirrorState
}

// banPage shows one ban, its enforcement and its audit trail.
func (c *Console) banPage(w http.ResponseWriter, r *request) {
	ban, err := c.auth.GetBan(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	rev, err := c.auth.Revision(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := banData{Ban: banRow{Ban: ban, State: stateName(ban, c.auth.Config().Clock())}}
	if d.Ban.State == "active" {
		e := c.enforcement(r.Context(), ban.ID, rev)
		d.Ban.Enforcement = e.Text
		d.Rollout = e.Mirrors
		d.LiveURL = "/console/live/bans?" + url.Values{"id": {ban.ID}, "rev": {strconv.FormatInt(rev, 10)}}.Encode()
	}
	if c.may(r.key, opAudit) {
		trail, err := c.banTrail(r.Context(), ban)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		d.Audit = trail
		// The whole trail of the subject, from the ban's creation.
		d.AuditURL = "/console/audit?" + url.Values{"subject": {subjectOf(ban)}, "tenant": {ban.TenantID},
			"from": {ban.CreateTime.UTC().Format(time.RFC3339)}}.Encode()
	}
	c.render(w, r, "ban", "Ban "+ban.ID, d)
}

// banTrail reads a ban's "ban.create" and "ban.lift" records. Each is
// written at the time the ban records (CreateTime, LiftTime), and an
// audit listing with a start time starts there, so each is among the
// first records of the ban's subject from that time: the console reads
// banTrailWindow records of the subject from it, through the store's
// index of audit records by subject, and keeps the ban's. A record not in
// its window (the subject had more records in that millisecond, or the
// audit retention swept it) is not shown; the page links the subject's
// whole trail.
func (c *Console) banTrail(ctx context.Context, ban storage.Ban) ([]storage.AuditRecord, error) {
	var out []storage.AuditRecord
	find := func(action string, at time.Time) error {
		recs, _, err := c.auth.ListAuditRecords(ctx, authority.AuditFilter{TenantID: ban.TenantID, Subject: subjectOf(ban), From: at},
			authority.Page{Size: banTrailWindow})
		for _, r := range recs {
			if r.TargetID == ban.ID && r.Action == action {
				out = append(out, r)
				break
			}
		}
		return err
	}
	if err := find("ban.create", ban.CreateTime); err != nil {
		return nil, err
	}
	if ban.Lifted() {
		if err := find("ban.lift", ban.LiftTime); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// banTrailWindow is how many records banTrail reads from each time.
const banTrailWindow = 20

// subjectOf is the audit subject of a ban ("user:alice").
func subjectOf(b storage.Ban) string { return string(b.Kind) + ":" + b.Value }

func (c *Console) liftBan(w http.ResponseWriter, r *request) {
	ban, _, err := c.auth.LiftBan(r.Context(), r.actor(), r.PathValue("id"), strings.TrimSpace(r.PostFormValue("reason")))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	redirect(w, r, "/console/bans/"+ban.ID, "Ban "+ban.ID+" lifted.")
}

// parseTime reads a time from a form: RFC 3339, or the
// datetime-local input's form (taken as UTC).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Parse("2006-01-02T15:04", s)
}
