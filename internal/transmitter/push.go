package transmitter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/ssf"
)

// errStop ends a push worker: its stream was paused, or ctx ended.
var errStop = errors.New("push worker stopped")

// pusher is one push stream's worker state.
type pusher struct {
	t  *Transmitter
	st storage.SignalStream
	c  *counters
	// since: the stream's record is as of this revision; a later change
	// of it ends the worker there (Run starts another with the change).
	since   int64
	pos     int64     // delivered through this revision
	written int64     // the Position last written
	wroteAt time.Time // when (wall time: it only spaces writes)
}

// push delivers the stream's SETs while this replica holds its push
// lease (lease.go), until ctx ends or the stream pauses; it gives the lease
// up when it stops.
func (t *Transmitter) push(ctx context.Context, id string, since int64) {
	for {
		st, ok := t.acquire(ctx, id)
		if !ok {
			return
		}
		lctx, cancel := context.WithCancel(ctx)
		var lost atomic.Bool
		var wg sync.WaitGroup
		wg.Go(func() { t.keepLease(lctx, id, func() { lost.Store(true); cancel() }) })
		t.pushHeld(lctx, st, since)
		cancel()
		wg.Wait()
		if !lost.Load() {
			t.release(context.WithoutCancel(ctx), id)
			return
		}
		// Another replica holds the lease: wait for it to run out or be
		// given up.
	}
}

// pushHeld delivers the stream's SETs until ctx ends or the stream pauses.
func (t *Transmitter) pushHeld(ctx context.Context, st storage.SignalStream, since int64) {
	p := &pusher{t: t, st: st, c: t.count(st.ID), since: since, pos: st.Position, written: st.Position}
	defer p.flush(context.WithoutCancel(ctx))
	backoff := t.cfg.MinBackoff
	run := p.run
	if st.MaxInFlight > 1 {
		run = p.runWindow // window.go
	}
	for ctx.Err() == nil {
		err := run(ctx)
		if errors.Is(err, errStop) || ctx.Err() != nil {
			return
		}
		// The store failed (or closed): follow the log again.
		t.log.Warn("SSF push: following the event log failed; retrying", "stream", st.ID, "error", err)
		if sleep(ctx, backoff) != nil {
			return
		}
		backoff = min(2*backoff, t.cfg.MaxBackoff)
	}
}

// watch follows the log from the stream's Position; a Position the log
// no longer holds pauses the stream (errStop).
func (p *pusher) watch(ctx context.Context) (storage.Watcher, error) {
	w, err := p.t.cfg.Store.Watch(ctx, p.pos)
	if errors.Is(err, storage.ErrCompacted) {
		p.t.pauseCompacted(ctx, p.st.ID, p.pos)
		return nil, errStop
	}
	return w, err
}

func (p *pusher) run(ctx context.Context) error {
	t := p.t
	w, err := p.watch(ctx)
	if err != nil {
		return err
	}
	defer w.Close()
	for {
		next, cancel := ctx, context.CancelFunc(func() {})
		if p.pos != p.written { // write Position once the log is quiet for positionEvery
			next, cancel = context.WithTimeout(ctx, positionEvery)
		}
		ch, err := w.Next(next)
		cancel()
		if ctx.Err() != nil {
			return errStop
		}
		if errors.Is(err, context.DeadlineExceeded) {
			p.flush(ctx)
			continue
		}
		if errors.Is(err, storage.ErrCompacted) {
			p.flush(ctx)
			t.pauseCompacted(ctx, p.st.ID, p.pos)
			return errStop
		}
		if err != nil {
			return err
		}
		for _, s := range t.setsFor(p.st, ch) {
			if err := p.deliver(ctx, s); err != nil {
				return err
			}
		}
		p.pos = ch.Revision
		if ch.Revision > p.since && changesStream(ch, p.st.ID) {
			// Reconfigured, paused or deleted from here on: what follows is
			// for the worker Run starts with the new record, if any.
			p.flush(ctx)
			return errStop
		}
		if time.Since(p.wroteAt) >= positionEvery {
			p.flush(ctx)
		}
	}
}

// changesStream reports whether ch changes the stream's record.
func changesStream(ch storage.Change, id string) bool {
	for _, ev := range ch.Events {
		if (ev.Kind == storage.EventSignalStreamUpdated || ev.Kind == storage.EventSignalStreamDeleted) &&
			ev.Signal != nil && ev.Signal.StreamID == id {
			return true
		}
	}
	return false
}

// deliver pushes one SET until the receiver takes (202) or refuses it
// for good (400), retrying everything else; past MaxOutage it pauses the
// stream and returns errStop.
func (p *pusher) deliver(ctx context.Context, s pending) error {
	t := p.t
	backoff := t.cfg.MinBackoff
	for {
		raw, err := t.sign(ctx, p.st, s)
		code := 0
		if err == nil {
			code, err = t.post(ctx, &p.st, raw)
		}
		switch {
		case err == nil && code >= 200 && code < 300:
			p.c.delivered.Add(1)
			if !p.st.OutageSince.IsZero() {
				p.setOutage(ctx, time.Time{}, "")
			}
			return nil
		case code == http.StatusBadRequest:
			p.c.skipped.Add(1)
			t.log.Warn("SSF push: the receiver refused a SET; skipped", "stream", p.st.ID, "jti", s.set.JTI, "error", err)
			return nil
		case ctx.Err() != nil:
			return errStop
		}
		p.c.failed.Add(1)
		if err == nil {
			err = fmt.Errorf("receiver answered %d", code)
		}
		now := t.now()
		if p.st.OutageSince.IsZero() {
			p.setOutage(ctx, now, err.Error())
		} else if now.Sub(p.st.OutageSince) >= t.cfg.MaxOutage {
			p.flush(ctx)
			t.pause(ctx, p.st.ID, fmt.Sprintf("the receiver failed for %s (since %s): %s", t.cfg.MaxOutage,
				p.st.OutageSince.Format(time.RFC3339), err))
			return errStop
		}
		t.log.Info("SSF push failed; retrying", "stream", p.st.ID, "jti", s.set.JTI, "error", err, "backoff", backoff)
		if sleep(ctx, backoff) != nil {
			return errStop
		}
		backoff = min(2*backoff, t.cfg.MaxBackoff)
	}
}

// post sends one SET to the stream's receiver (RFC 8935 §2).
func (t *Transmitter) post(ctx context.Context, st *storage.SignalStream, raw string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, st.EndpointURL, strings.NewReader(raw))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", ssf.ContentType)
	req.Header.Set("Accept", "application/json")
	if st.AuthorizationHeader != "" {
		req.Header.Set("Authorization", st.AuthorizationHeader)
	}
	resp, err := t.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusBadRequest {
		// RFC 8935 §2.3: the receiver says why, as {"err", "description"}.
		var e ssf.PushError
		if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e) == nil && e.Err != "" {
			return resp.StatusCode, &pushRefused{e}
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// pushRefused is a receiver's RFC 8935 error for one SET.
type pushRefused struct{ e ssf.PushError }

func (p *pushRefused) Error() string {
	return fmt.Sprintf("the receiver refused the SET: %.100s: %.300s", p.e.Err, p.e.Description)
}

// setOutage records the start (or, zero, the end) of the receiver's
// outage on the stream, without an event.
func (p *pusher) setOutage(ctx context.Context, since time.Time, lastErr string) {
	p.st.OutageSince = since
	_, err := p.t.cfg.Store.Update(ctx, func(tx storage.Tx) error {
		st, err := tx.SignalStream(p.st.ID)
		if err != nil {
			return err
		}
		st.OutageSince, st.LastError = since, lastErr
		if since.IsZero() {
			st.LastDeliveryTime = p.t.now()
		}
		return tx.PutSignalStream(st)
	})
	if err != nil && ctx.Err() == nil {
		p.t.log.Warn("SSF push: recording the outage failed", "stream", p.st.ID, "error", err)
	}
}

// flush writes Position, without an event, when it moved.
func (p *pusher) flush(ctx context.Context) {
	if p.pos == p.written {
		return
	}
	if err := p.t.advance(ctx, p.st.ID, p.pos, nil); err != nil {
		p.t.log.Warn("SSF push: writing the stream position failed", "stream", p.st.ID, "error", err)
		return
	}
	p.written, p.wroteAt = p.pos, time.Now()
}

// advance moves a stream's Position forward to pos (never back: several
// replicas deliver the same stream) and drops the acknowledgements it
// covers, without an event.
func (t *Transmitter) advance(ctx context.Context, id string, pos int64, drop func(jti string) bool) error {
	_, err := t.cfg.Store.Update(ctx, func(tx storage.Tx) error {
		st, err := tx.SignalStream(id)
		if errors.Is(err, storage.ErrNotFound) {
			return nil // deleted meanwhile
		} else if err != nil {
			return err
		}
		if pos <= st.Position {
			return nil
		}
		st.Position = pos
		if drop != nil {
			kept := st.Acked[:0:0]
			for _, j := range st.Acked {
				if !drop(j) {
					kept = append(kept, j)
				}
			}
			st.Acked = kept
		}
		if st.DeliveryMethod == ssf.DeliveryPush {
			st.LastDeliveryTime = t.now()
		}
		return tx.PutSignalStream(st)
	})
	return err
}

// pause pauses an enabled stream with a reason (an event: every replica's
// worker stops).
func (t *Transmitter) pause(ctx context.Context, id, reason string) {
	ctx = context.WithoutCancel(ctx)
	_, err := t.cfg.Store.Update(ctx, func(tx storage.Tx) error {
		st, err := tx.SignalStream(id)
		if err != nil || st.Status != StatusEnabled {
			return err
		}
		st.Status, st.StatusReason, st.UpdateTime = StatusPaused, reason, t.now()
		if err := tx.PutSignalStream(st); err != nil {
			return err
		}
		if err := t.updated(tx, storage.EventSignalStreamUpdated, id); err != nil {
			return err
		}
		return tx.AppendAudit(t.audit(Caller{Actor: authority.System}, "signal.stream.status", st,
			map[string]string{"status": st.Status, "reason": reason}))
	})
	if err != nil {
		t.log.Error("SSF: pausing a stream failed", "stream", id, "error", err)
		return
	}
	t.log.Warn("SSF stream paused", "stream", id, "reason", reason)
}

// pauseCompacted pauses a stream whose Position the log no longer holds.
func (t *Transmitter) pauseCompacted(ctx context.Context, id string, pos int64) {
	t.pause(ctx, id, fmt.Sprintf("events were lost: the event log no longer holds the revisions after %d (compacted); "+
		"enable the stream to continue from the current revision", pos))
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}
