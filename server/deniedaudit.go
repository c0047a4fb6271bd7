package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/portcullis-dev/portcullis/internal/authority"
)

// deniedSummaryMaxAddrs bounds the distinct addresses a summary tracks
// (about 100 bytes each): past it, the summary says "at least".
const deniedSummaryMaxAddrs = 10000

// deniedFlushTimeout bounds the write of one summary record.
const deniedFlushTimeout = 10 * time.Second

// deniedAuditor decides how each denied call is audited. Up to a global
// rate (Limits.DeniedAuditPerSecond, across every address) a denied call
// gets its own call.denied record; past it, and whenever the per-address
// failed-authentication limit refused the call, it is only counted, into
// a call.denied.summary record written at most once per
// Limits.DeniedSummaryInterval. So every denied call is in the audit trail
// exactly once, one by one or in a count, and a flood from many addresses
// costs at most the rate of individual records plus one summary per
// interval, instead of one durable write per call.
//
// A summary is written by the first denied call after its interval, or
// by a timer when the flood stops, or by Flush (at shutdown). Decisions
// use the authority's clock (tests set it); the timer only wakes.
type deniedAuditor struct {
	now      func() time.Time
	interval time.Duration
	closing  <-chan struct{}
	log      *slog.Logger
	// audit writes one call.denied record; summarize one summary.
	audit     func(ctx context.Context, actor authority.Actor, method, why string)
	summarize func(ctx context.Context, s authority.DeniedSummary) error

	mu      sync.Mutex
	limiter *rate.Limiter // nil: no global bound
	pending *authority.DeniedSummary
	addrs   map[string]int // pending's addresses
	timer   *time.Timer
	flushed bool // Flush ran: the timer no longer writes
	writes  sync.WaitGroup
}

// newDeniedAuditor returns an auditor with l's bounds (after defaults)
// that writes through audit and summarize (the authority's RecordDenied
// and RecordDeniedSummary).
func newDeniedAuditor(l Limits, now func() time.Time, closing <-chan struct{}, log *slog.Logger,
	audit func(context.Context, authority.Actor, string, string),
	summarize func(context.Context, authority.DeniedSummary) error) *deniedAuditor {
	d := &deniedAuditor{now: now, interval: l.DeniedSummaryInterval, closing: closing, log: log,
		audit: audit, summarize: summarize}
	if l.DeniedAuditPerSecond >= 0 && l.DeniedAuditBurst >= 0 {
		d.limiter = rate.NewLimiter(rate.Limit(l.DeniedAuditPerSecond), l.DeniedAuditBurst)
	}
	return d
}

// record audits one denied call: on its own if the global rate allows and
// the per-address limit did not refuse it (limited), else in the summary.
func (d *deniedAuditor) record(ctx context.Context, actor authority.Actor, ip, method, why string, limited bool) {
	now := d.now()
	d.mu.Lock()
	due := d.takeDue(now, false)
	own := !limited && (d.limiter == nil || d.limiter.AllowN(now, 1))
	if !own {
		d.count(now, ip, why, limited)
	}
	d.mu.Unlock()
	if due != nil {
		d.write(context.WithoutCancel(ctx), *due)
	}
	if own {
		d.audit(ctx, actor, method, why)
	}
}

// count adds one call to the pending summary, opening it (and arming the
// timer that writes it if no call comes) when there is none.
func (d *deniedAuditor) count(now time.Time, ip, why string, limited bool) {
	if d.pending == nil {
		d.pending = &authority.DeniedSummary{From: now, Reasons: map[string]int{}}
		d.addrs = map[string]int{}
		if !d.flushed {
			d.arm(d.interval)
		}
	}
	p := d.pending
	p.Calls++
	if limited {
		p.RateLimited++
	}
	p.Reasons[why]++
	if _, seen := d.addrs[ip]; seen || len(d.addrs) < deniedSummaryMaxAddrs {
		d.addrs[ip]++
	} else {
		p.AddressesCapped = true
	}
}

// takeDue returns the pending summary, closed at now, when its interval
// has passed (or always, with force), and starts a new one.
func (d *deniedAuditor) takeDue(now time.Time, force bool) *authority.DeniedSummary {
	p := d.pending
	if p == nil || (!force && now.Before(p.From.Add(d.interval))) {
		return nil
	}
	p.To = now
	p.Addresses = len(d.addrs)
	p.TopAddresses = authority.TopCounts(d.addrs, authority.DeniedSummaryTopAddresses)
	d.pending, d.addrs = nil, nil
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	return p
}

// arm (re)starts the timer that writes the pending summary after wait.
func (d *deniedAuditor) arm(wait time.Duration) {
	if d.timer != nil {
		d.timer.Stop()
	}
	d.timer = time.AfterFunc(wait, d.onTimer)
}

// onTimer writes the pending summary if its interval has passed by the
// authority's clock, or waits again; after Shutdown it leaves it to Flush.
func (d *deniedAuditor) onTimer() {
	select {
	case <-d.closing:
		return
	default:
	}
	now := d.now()
	d.mu.Lock()
	if d.flushed {
		d.mu.Unlock()
		return
	}
	due := d.takeDue(now, false)
	if due == nil && d.pending != nil {
		d.arm(max(d.pending.From.Add(d.interval).Sub(now), time.Millisecond))
	}
	if due != nil {
		d.writes.Add(1)
	}
	d.mu.Unlock()
	if due != nil {
		defer d.writes.Done()
		d.write(context.Background(), *due)
	}
}

// Flush writes the pending summary now, whatever its interval, and stops
// the timer: for a final write before the store closes. Calls denied after
// it are still counted and written by the next record or Flush.
func (d *deniedAuditor) Flush(ctx context.Context) {
	d.mu.Lock()
	d.flushed = true
	due := d.takeDue(d.now(), true)
	d.mu.Unlock()
	d.writes.Wait() // a timer's write in flight
	if due != nil {
		d.write(ctx, *due)
	}
}

func (d *deniedAuditor) write(ctx context.Context, s authority.DeniedSummary) {
	ctx, cancel := context.WithTimeout(ctx, deniedFlushTimeout)
	defer cancel()
	if err := d.summarize(ctx, s); err != nil {
		d.log.Error("writing the summary of denied calls failed", "calls", s.Calls, "error", err)
		return
	}
	d.log.Warn("denied calls summarized in the audit trail", "calls", s.Calls, "addresses", s.Addresses,
		"rate_limited", s.RateLimited, "from", s.From, "to", s.To)
}

// FlushDeniedAudit writes the summary of the denied calls counted but not
// yet written (see Limits.DeniedAuditPerSecond). Call it after the gRPC
// server stopped and before the store closes, so that no count is lost.
func (s *Server) FlushDeniedAudit(ctx context.Context) { s.denied.Flush(ctx) }
