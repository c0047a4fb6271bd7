package authority

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// AuditFilter selects audit records to list.
type AuditFilter struct {
	TenantID string
	Subject  string
	Actor    string
	Action   string
	Channel  string    // ChannelGRPC, ChannelConsole
	From     time.Time // inclusive
	To       time.Time // exclusive
}

// ListAuditRecords lists audit records, oldest first.
func (a *Authority) ListAuditRecords(ctx context.Context, f AuditFilter, p Page) ([]storage.AuditRecord, string, error) {
	for field, v := range map[string]string{"tenant_id": f.TenantID, "subject": f.Subject, "actor": f.Actor, "action": f.Action, "channel": f.Channel} {
		if err := checkText(field, v); err != nil {
			return nil, "", err
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return nil, "", invalid("end_time", "must be after start_time")
	}
	size, after, err := p.start("audit", f)
	if err != nil {
		return nil, "", err
	}
	if after == "" && !f.From.IsZero() {
		// Start the scan at From instead of at the oldest record (a time
		// range of the last hour reads the last hour): see idBefore.
		after = idBefore("aud_", f.From)
	}
	// The store seeks with the index (subject, else actor) and the start;
	// the other filters are applied here, so that the records read can be
	// counted and bounded.
	seek := storage.AuditQuery{Subject: f.Subject, After: after}
	if f.Subject == "" {
		seek.Actor = f.Actor
	}
	want := storage.AuditQuery{TenantID: f.TenantID, Subject: f.Subject, Actor: f.Actor,
		Action: f.Action, Channel: f.Channel, From: f.From, To: f.To}
	var out []storage.AuditRecord
	var last string // the last record read
	more := false
	err = a.store.View(ctx, func(tx storage.ReadTx) error {
		scanned := 0
		for r, err := range tx.AuditRecords(seek) {
			if err != nil {
				return err
			}
			if scanned == auditScanLimit || (len(out) == size && want.Matches(&r)) {
				more = true
				break
			}
			scanned++
			if want.Matches(&r) {
				out = append(out, r)
			}
			last = r.ID
		}
		return nil
	})
	if err != nil || !more {
		return out, "", err
	}
	return out, nextPageToken("audit", f, last), nil
}

// auditScanLimit bounds the audit records one page reads under filters
// that no index serves (action, channel, tenant, an end time): past it the
// page ends short, even empty, with a next page token, so that no call
// reads the whole trail (about 5 µs a record on a bbolt store).
var auditScanLimit = 20000

// ActionDeniedSummary is the action of a record that counts denied calls
// that were not audited one by one (see DeniedSummary).
const ActionDeniedSummary = "call.denied.summary"

// DeniedSummaryTopAddresses is how many addresses a summary names.
const DeniedSummaryTopAddresses = 5

// DeniedSummary counts the denied calls of an interval that have no
// call.denied record of their own: past the global rate of individual
// records, or refused by the per-address limit of failed authentications.
type DeniedSummary struct {
	From, To time.Time // the calls counted were denied in [From, To]
	Calls    int
	// RateLimited is how many of Calls the per-address limit refused
	// (ResourceExhausted).
	RateLimited int
	// Addresses is how many distinct peer addresses the calls came from;
	// AddressesCapped: more than were tracked, so at least that many.
	Addresses       int
	AddressesCapped bool
	Reasons         map[string]int // calls by why they were denied
	TopAddresses    []NameCount    // the addresses with the most calls
}

// NameCount is a name with how many times it occurred.
type NameCount struct {
	Name  string
	Count int
}

// TopCounts returns the n names with the highest counts, highest first
// (ties by name).
func TopCounts(m map[string]int, n int) []NameCount {
	out := make([]NameCount, 0, len(m))
	for k, v := range m {
		out = append(out, NameCount{k, v})
	}
	slices.SortFunc(out, func(a, b NameCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out[:min(n, len(out))]
}

// joinCounts renders counts as "name=count, ...", highest first.
func joinCounts(cs []NameCount) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.Name + "=" + strconv.Itoa(c.Count)
	}
	return strings.Join(parts, ", ")
}

// RecordDeniedSummary writes one call.denied.summary audit record.
func (a *Authority) RecordDeniedSummary(ctx context.Context, s DeniedSummary) error {
	now := a.now()
	addrs := strconv.Itoa(s.Addresses)
	if s.AddressesCapped {
		addrs = "at least " + addrs
	}
	rec := storage.AuditRecord{
		ID: newID("aud_", now), Time: now, Action: ActionDeniedSummary, Actor: System.Name,
		Reason: "denied calls beyond the audit rate, counted rather than recorded one by one",
		Details: map[string]string{
			"calls":         strconv.Itoa(s.Calls),
			"rate_limited":  strconv.Itoa(s.RateLimited),
			"addresses":     addrs,
			"from":          s.From.UTC().Format(time.RFC3339Nano),
			"to":            s.To.UTC().Format(time.RFC3339Nano),
			"reasons":       joinCounts(TopCounts(s.Reasons, len(s.Reasons))),
			"top_addresses": joinCounts(s.TopAddresses),
		},
	}
	_, err := a.store.Update(ctx, func(tx storage.Tx) error { return tx.AppendAudit(rec) })
	return err
}
