package server

import (
	"context"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
)

// SweepExpired runs one pass of authority.Sweep (which logs its counts)
// and adds what it deleted to portcullis_swept_total, also when the pass
// stopped part way (what it deleted stands).
func (s *Server) SweepExpired(ctx context.Context, retention time.Duration) (authority.SweepResult, error) {
	res, err := s.auth.Sweep(ctx, retention)
	s.metrics.swept.WithLabelValues("session").Add(float64(res.Sessions))
	s.metrics.swept.WithLabelValues("refresh_token").Add(float64(res.RefreshTokens))
	return res, err
}

// RunSweeper calls SweepExpired every interval (the first pass one
// interval after the start, so that a restart loop does not sweep at every
// start) until ctx ends or the server shuts down, and returns then. A
// failed pass is logged by the authority and retried at the next tick.
//
// Replicas over one etcd store may all run it: a pass re-reads every
// session it deletes in the deleting transaction and deletes only what is
// still there and still ended, deletes of absent records are no-ops, and a
// transaction that lost a race to another replica's runs again (storage's
// optimistic Update), so concurrent passes only duplicate reads.
func (s *Server) RunSweeper(ctx context.Context, retention, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.closing:
			return
		case <-t.C:
			_, _ = s.SweepExpired(ctx, retention) // logged by Sweep
		}
	}
}
