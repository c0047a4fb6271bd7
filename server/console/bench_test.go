package console_test

import (
	"context"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/server"
)

// The size of the store BenchmarkConsolePages serves: the goal's 1,000,000
// sessions and 100,000 bans (one audit record each) by default;
// PORTCULLIS_BENCH_SESSIONS and PORTCULLIS_BENCH_BANS change it.
func benchSize(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

var benchIDs = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// benchID is an ID of the authority's form, ordered by i.
func benchID(prefix string, t time.Time, i int) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli())<<16)
	binary.BigEndian.PutUint64(b[8:], uint64(i))
	return prefix + benchIDs.EncodeToString(b[:])
}

// seedLarge writes the bans (every tenth lifted, every seventh expired,
// reasons from a small set and one rare one), their audit records (create,
// and lift for the lifted),
// and the sessions (ten per user, users spread over ten tenants) straight into the
// store, in transactions of 20,000 records: the benchmark measures the
// pages, not the writes.
func seedLarge(b *testing.B, store storage.Store, sessions, bans int, now time.Time) {
	ctx := context.Background()
	const batch = 20000
	reasons := []string{"spam", "credential stuffing", "chargeback fraud", "harassment", "scraping"}
	for start := 0; start < bans; start += batch {
		_, err := store.Update(ctx, func(tx storage.Tx) error {
			for i := start; i < min(start+batch, bans); i++ {
				t := now.Add(-time.Duration(bans-i) * time.Second)
				ban := storage.Ban{ID: benchID("ban_", t, i), TenantID: fmt.Sprintf("t%d", i%10), Kind: storage.SubjectUser,
					Value: fmt.Sprintf("user-%d", i), Reason: reasons[i%len(reasons)], Policy: fmt.Sprintf("policy-%d", i%20),
					CreatedBy: "seed", CreateTime: t}
				if i == bans/2 {
					ban.Reason = "needle in the haystack"
				}
				if i%10 == 0 {
					ban.LiftTime, ban.LiftedBy, ban.LiftReason = t.Add(time.Second), "seed", "appeal"
					if err := tx.AppendAudit(storage.AuditRecord{ID: benchID("aud_", ban.LiftTime, i), Time: ban.LiftTime, Action: "ban.lift",
						Actor: "seed", TenantID: ban.TenantID, Subject: "user:" + ban.Value, TargetID: ban.ID, Reason: "appeal"}); err != nil {
						return err
					}
				} else if i%7 == 0 {
					ban.ExpireTime = t.Add(time.Millisecond)
				}
				if err := tx.PutBan(ban); err != nil {
					return err
				}
				if err := tx.AppendAudit(storage.AuditRecord{ID: benchID("aud_", t, i), Time: t, Action: "ban.create", Actor: "seed",
					TenantID: ban.TenantID, Subject: "user:" + ban.Value, TargetID: ban.ID, Reason: ban.Reason}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for start := 0; start < sessions; start += batch {
		_, err := store.Update(ctx, func(tx storage.Tx) error {
			for i := start; i < min(start+batch, sessions); i++ {
				t := now.Add(-time.Duration(sessions-i) * time.Millisecond)
				s := storage.Session{ID: benchID("ses_", t, i), TenantID: fmt.Sprintf("t%d", (i/10)%10), UserID: fmt.Sprintf("u%d", i/10),
					DeviceID: fmt.Sprintf("d%d", i), ClientIP: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}),
					CreateTime: t, RefreshTime: t, ExpireTime: t.Add(30 * 24 * time.Hour), AccessExpireTime: t.Add(15 * time.Minute)}
				if err := tx.PutSession(s); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConsolePages measures the server time of each console page
// (the handler, from request to the last byte written) over a store of
// PORTCULLIS_BENCH_SESSIONS sessions and PORTCULLIS_BENCH_BANS bans:
//
//	go test -run '^$' -bench ConsolePages -benchtime 20x ./server/console
func BenchmarkConsolePages(b *testing.B) {
	nSessions, nBans := benchSize("PORTCULLIS_BENCH_SESSIONS", 1_000_000), benchSize("PORTCULLIS_BENCH_BANS", 100_000)
	store, err := bolt.Open(filepath.Join(b.TempDir(), "portcullis.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	now := time.Now().UTC()
	auth := authority.New(store, authority.Config{})
	ctx := context.Background()
	if err := auth.EnsureSigningKey(ctx); err != nil {
		b.Fatal(err)
	}
	key, err := auth.EnsureBootstrapKey(ctx)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	seedLarge(b, store, nSessions, nBans, now)
	b.Logf("seeded %d sessions and %d bans in %v", nSessions, nBans, time.Since(start).Round(time.Second))
	srv := server.New(auth, server.Options{})
	defer srv.Shutdown()
	h := srv.HTTPHandler(server.WithConsole(false))

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/console/login", strings.NewReader(url.Values{"key": {key}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	h.ServeHTTP(rec, req)
	cookies := rec.Result().Cookies()
	if rec.Code != http.StatusSeeOther || len(cookies) != 1 {
		b.Fatalf("sign-in: %d %v", rec.Code, cookies)
	}
	mid := benchID("ban_", now.Add(-time.Duration(nBans-nBans/2)*time.Second), nBans/2)
	pages := []struct{ name, path, want string }{
		{"bans", "/console/bans", "enforced by"},
		{"bans_next_page", "", ""}, // filled below from the first page's link
		{"bans_lifted", "/console/bans?state=lifted", "lifted"},
		{"bans_tenant_user", "/console/bans?tenant=t3&kind=user&state=active", "active"},
		{"bans_search_rare_reason", "/console/bans?reason=needle", ""},
		{"bans_search_subject", "/console/bans?subject=user-4242", "user-4242"},
		{"ban_with_trail", "/console/bans/" + mid, "<td>ban.lift</td>"},
		{"ban_audit_trail_from_creation", "", "needle in the haystack"}, // the ban page's link, below
		{"audit", "/console/audit", "ban.create"},
		{"audit_subject_whole_trail", "/console/audit?subject=user:user-4242", "user-4242"},
		{"audit_actor_time", "/console/audit?actor=seed&from=" + url.QueryEscape(now.Add(-time.Hour).Format(time.RFC3339)), "ban.create"},
		{"audit_action_none_has", "/console/audit?action=key.rotate", "Audit"}, // no index: one page reads at most 20,000 records
		{"sessions_user", fmt.Sprintf("/console/sessions?tenant=t%d&user=u%d", (nSessions/20)%10, nSessions/20), "ses_"},
		{"fleet", "/console/fleet", "Store revision"},
		{"apikeys", "/console/apikeys", "bootstrap-admin"},
	}
	do := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.AddCookie(cookies[0])
		h.ServeHTTP(rec, req)
		return rec
	}
	first := do("/console/bans").Body.String()
	i := strings.Index(first, `href="/console/bans?cursor=`)
	if i < 0 {
		b.Fatal("the first bans page has no next link")
	}
	next := first[i+len(`href="`):]
	pages[1].path = strings.ReplaceAll(next[:strings.IndexByte(next, '"')], "&amp;", "&")
	banPage := do("/console/bans/" + mid).Body.String()
	i = strings.Index(banPage, `href="/console/audit?`)
	if i < 0 {
		b.Fatal("the ban page has no audit trail link")
	}
	trail := banPage[i+len(`href="`):]
	for j := range pages {
		if pages[j].name == "ban_audit_trail_from_creation" {
			pages[j].path = strings.ReplaceAll(trail[:strings.IndexByte(trail, '"')], "&amp;", "&")
		}
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				rec := do(p.path)
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), p.want) {
					b.Fatalf("%s: %d, want 200 with %q:\n%.2000s", p.path, rec.Code, p.want, rec.Body.String())
				}
			}
		})
	}
}
