package receiver

import (
	"context"
	"errors"
	"slices"

	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/ssf"
)

// Run's timing. Real time, not the clock: they pace work, they decide
// nothing (the SETs' windows and KeepUntil use the clock).
const (
	rescanEvery    = time.Minute     // transmitters other replicas added or removed
	pollWait       = 2 * time.Minute // one long poll (returnImmediately false)
	pollBackoffMax = time.Minute     // after failed polls
	sweepBatch     = 64              // ReceivedSETs deleted per Update
)

// Run polls every poll transmitter and sweeps the expired ReceivedSETs
// until ctx ends.
func (r *Receiver) Run(ctx context.Context) {
	pollers := map[string]context.CancelFunc{}
	defer func() {
		for _, stop := range pollers {
			stop()
		}
	}()
	for {
		list, err := r.List(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("listing signal transmitters", "error", err)
		}
		if err == nil {
			seen := map[string]bool{}
			for _, t := range list {
				if t.DeliveryMethod != ssf.DeliveryPoll {
					continue
				}
				seen[t.ID] = true
				if pollers[t.ID] == nil {
					pctx, stop := context.WithCancel(ctx)
					pollers[t.ID] = stop
					go r.poll(pctx, t.ID)
				}
			}
			for id, stop := range pollers {
				if !seen[id] {
					stop()
					delete(pollers, id)
				}
			}
		}
		if _, err := r.Sweep(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("sweeping received SETs", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-time.After(rescanEvery):
		}
	}
}

// poll polls one transmitter until ctx ends or it is deleted: each poll
// acknowledges the SETs the last one applied (or found replayed) and
// reports those it refused (RFC 8936 setErrs).
func (r *Receiver) poll(ctx context.Context, id string) {
	var ack []string
	setErrs := map[string]ssf.SETErr{}
	backoff := time.Second
	for ctx.Err() == nil {
		t, err := r.Get(ctx, id)
		if err != nil {
			return // deleted (or the store is closing): Run stops this poller
		}
		req := ssf.PollRequest{MaxEvents: &r.cfg.PollMaxEvents, ReturnImmediately: false, Ack: ack}
		if len(setErrs) > 0 {
			req.SetErrs = setErrs
		}
		var resp ssf.PollResponse
		err = r.call(ctx, t, "POST", t.PollURL, req, &resp, pollWait)
		r.pollStatus(ctx, t, err)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.log.Warn("polling a signal transmitter failed", "transmitter", id, "error", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, pollBackoffMax)
			continue // the acks are sent again with the next poll
		}
		backoff = time.Second
		ack, setErrs = r.applyPolled(ctx, t, resp.Sets)
	}
}

// applyPolled processes a poll's SETs in the order the transmitter issued
// them and returns the jtis to acknowledge and those to report refused. A
// SET that failed for a reason of our own (the store) is neither: the
// transmitter delivers it again.
func (r *Receiver) applyPolled(ctx context.Context, t storage.SignalTransmitter, sets map[string]string) (ack []string, errs map[string]ssf.SETErr) {
	errs = map[string]ssf.SETErr{}
	jtis := make([]string, 0, len(sets))
	for jti := range sets {
		jtis = append(jtis, jti)
	}
	slices.SortFunc(jtis, naturalCompare)
	var run []*item
	var keys []string // the jti each was delivered under
	for _, jti := range jtis {
		it, err := r.prepare(ctx, t, sets[jti], r.cfg.PollMaxAge)
		if it == nil {
			errs[jti] = ssf.SETErr{Err: errCode(err), Description: truncate(err.Error())}
			continue
		}
		run, keys = append(run, it), append(keys, jti)
	}
	// A poll's SETs are one run: one transaction for all of them.
	r.applyRun(ctx, run)
	for i, it := range run {
		jti, err := keys[i], it.err
		switch {
		case err == nil, errors.Is(err, ErrSETReplayed):
			ack = append(ack, jti)
		case isRefusal(err):
			errs[jti] = ssf.SETErr{Err: errCode(err), Description: truncate(err.Error())}
		default:
			if ctx.Err() == nil {
				r.log.Warn("applying a polled SET failed; the transmitter will deliver it again", "transmitter", t.ID, "jti", jti, "error", err)
			}
		}
	}
	return ack, errs
}

// isRefusal: the SET itself is at fault; delivering it again will not help.
func isRefusal(err error) bool {
	return errors.Is(err, ErrSETInvalid) || errors.Is(err, ErrSETKey) || errors.Is(err, ErrSETIssuer) ||
		errors.Is(err, ErrSETAudience) || errors.Is(err, authority.ErrInvalidArgument)
}

// ErrCode is the RFC 8935 "err" code of a refused SET.
func ErrCode(err error) string { return errCode(err) }

func errCode(err error) string {
	switch {
	case errors.Is(err, ErrSETKey):
		return "invalid_key"
	case errors.Is(err, ErrSETIssuer):
		return "invalid_issuer"
	case errors.Is(err, ErrSETAudience):
		return "invalid_audience"
	}
	return "invalid_request"
}

// naturalCompare orders jtis with their digit runs as numbers, so that a
// transmitter's "stream-9-0" comes before "stream-10-0".
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := len(na) - len(nb); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func digits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// pollStatus records a poll's outcome in the transmitter's status: every
// failure that follows a success, and a success at most once a minute.
func (r *Receiver) pollStatus(ctx context.Context, t storage.SignalTransmitter, perr error) {
	now := r.now()
	if perr == nil && t.LastError == "" && now.Sub(t.LastSuccessTime) < time.Minute {
		return
	}
	if perr != nil && t.LastError != "" && now.Sub(t.LastErrorTime) < time.Minute {
		return
	}
	_, err := r.auth.Update(ctx, func(tx storage.Tx) error {
		cur, err := tx.SignalTransmitter(t.ID)
		if err != nil {
			return err
		}
		if perr != nil {
			cur.LastError, cur.LastErrorTime = truncate(perr.Error()), now
		} else {
			cur.LastSuccessTime, cur.LastError, cur.LastErrorTime = now, "", time.Time{}
		}
		return tx.PutSignalTransmitter(cur)
	})
	if err != nil && ctx.Err() == nil && !errors.Is(err, storage.ErrNotFound) {
		r.log.Warn("recording a poll's status", "transmitter", t.ID, "error", err)
	}
}

// Sweep deletes the ReceivedSETs past their KeepUntil (their SETs' iat is
// outside the window now: Verify refuses a replay by itself) and returns
// how many.
func (r *Receiver) Sweep(ctx context.Context) (int, error) {
	now := r.now()
	var expired []string
	err := r.auth.View(ctx, func(tx storage.ReadTx) error {
		for s, err := range tx.ReceivedSETs() {
			if err != nil {
				return err
			}
			if now.After(s.KeepUntil) {
				expired = append(expired, storage.ReceivedSETKey(s.Transmitter, s.JTI))
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for batch := range slices.Chunk(expired, sweepBatch) {
		if _, err := r.auth.Update(ctx, func(tx storage.Tx) error {
			for _, k := range batch {
				if err := tx.DeleteReceivedSET(k); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return 0, err
		}
	}
	return len(expired), nil
}
