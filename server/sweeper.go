package server

import (
	"context"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
)

// SweepConfig is what RunSweeper deletes, and how often.
type SweepConfig struct {
	// Interval between passes (must be positive).
	Interval time.Duration
	// SessionRetention is how long ended sessions stay (authority.Sweep).
	SessionRetention time.Duration
	// AuditRetention is how long audit records stay (authority.SweepAudit);
	// 0 keeps them forever.
	AuditRetention time.Duration
}

// SweepExpired runs one pass of authority.Sweep (which logs its counts)
// and adds what it deleted to portcullis_swept_total, also when the pass
// stopped part way (what it deleted stands).
func (s *Server) SweepExpired(ctx context.Context, retention time.Duration) (authority.SweepResult, error) {
	res, err := s.auth.Sweep(ctx, retention)
	s.metrics.swept.WithLabelValues("session").Add(float64(res.Sessions))
	s.metrics.swept.WithLabelValues("refresh_token").Add(float64(res.RefreshTokens))
	return res, err
}

// SweepAudit runs one pass of authority.SweepAudit (which logs its count)
// and adds what it deleted to portcullis_swept_total{kind="audit"}.
func (s *Server) SweepAudit(ctx context.Context, retention time.Duration) (authority.AuditSweepResult, error) {
	res, err := s.auth.SweepAudit(ctx, retention)
	s.metrics.swept.WithLabelValues("audit").Add(float64(res.Records))
	return res, err
}

// RunSweeper runs SweepExpired and SweepAudit every interval (the first
// pass one interval after the start, so that a restart loop does not sweep
// at every start) until ctx ends or the server shuts down, and returns
// then. A failed pass is logged by the authority and retried at the next
// tick; a failed session pass does not skip the audit pass.
//
// Replicas over one etcd store may all run it: a pass re-reads what it
// deletes in the deleting transaction and deletes only what is still
// there and still past its retention, deletes of absent records are
// no-ops, and a transaction that lost a race to another replica's runs
// again (storage's optimistic Update), so concurrent passes only
// duplicate reads.
func (s *Server) RunSweeper(ctx context.Context, cfg SweepConfig) {
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.closing:
			return
		case <-t.C:
			_, _ = s.SweepExpired(ctx, cfg.SessionRetention) // logged by Sweep
			_, _ = s.SweepAudit(ctx, cfg.AuditRetention)     // logged by SweepAudit
		}
	}
}
