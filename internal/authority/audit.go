package authority

import (
	"context"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// AuditFilter selects audit records to list.
type AuditFilter struct {
	TenantID string
	Subject  string
	Actor    string
	Action   string
	From     time.Time // inclusive
	To       time.Time // exclusive
}

// ListAuditRecords lists audit records, oldest first.
func (a *Authority) ListAuditRecords(ctx context.Context, f AuditFilter, p Page) ([]storage.AuditRecord, string, error) {
	for field, v := range map[string]string{"tenant_id": f.TenantID, "subject": f.Subject, "actor": f.Actor, "action": f.Action} {
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
	var out []storage.AuditRecord
	var next string
	err = a.store.View(ctx, func(tx storage.ReadTx) error {
		var err error
		out, next, err = collect("audit", f, size,
			tx.AuditRecords(storage.AuditQuery{TenantID: f.TenantID, Subject: f.Subject, Actor: f.Actor,
				Action: f.Action, From: f.From, To: f.To, After: after}),
			func(r storage.AuditRecord) string { return r.ID }, nil)
		return err
	})
	return out, next, err
}
