package transmitter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// Windowed push: a stream whose receiver asked for portcullis_max_in_flight
// N > 1 has up to N SETs POSTed at once, signed in the stream's order, so
// that the round trip and the receiver's commit are paid once per window
// instead of once per SET. The receiver puts them back in order by
// PrevJTI, which is the correctness core:
//
// PrevJTI rule. Every SET carries PrevJTI = the jti of the SET this worker
// sent just before it, EXCEPT when, at the moment it is sent, no earlier
// SET of the stream is unacknowledged (each was answered 202, or 400 and
// skipped): then PrevJTI is empty. Acknowledged means applied at the
// receiver, so an empty PrevJTI tells it to apply the SET at once, and a
// non-empty one names a SET that is in flight, hence one the receiver will
// get (or whose failure makes this worker re-send everything after it).
// The first SET after a worker (re)starts and the first one re-sent after
// a failure carry none: everything before them is acknowledged. A receiver
// therefore never waits for a SET the transmitter will not send.
//
// Position rule. Acknowledgements arrive in any order; Position moves only
// to the revision of the last change all of whose SETs, and all earlier
// ones, are acknowledged: a restart from Position re-sends (same jti)
// whatever was not, and loses nothing.
//
// Failures. Anything but 2xx or 400 (or no answer) stops new sends; the
// SETs in flight finish (their outcomes count), then, after the backoff,
// every SET not acknowledged is re-sent in order from the first one, with
// the outage and pause rules of one-at-a-time delivery.

// maxQueued bounds the SETs and change ends a windowed worker holds while
// the first unacknowledged SET is stuck and later ones are acknowledged
// (a receiver that answers out of order): past it, it reads no more of the
// log until that SET is.
const maxQueued = 16 * MaxInFlight

// slot states.
const (
	unsent = iota
	inFlight
	acked
)

// slot is one SET of the window, or the end of a change (mark: reaching
// it with everything before acknowledged moves Position to its revision).
type slot struct {
	p     pending
	mark  bool
	state int
}

// sent is the outcome of one POST (or of signing it).
type sent struct {
	seq  int64
	code int
	err  error
}

// next is one change read from the log, or the error that ended the read.
type next struct {
	ch  storage.Change
	err error
}

// window is a windowed worker's state; one goroutine owns it.
type window struct {
	p *pusher
	n int // MaxInFlight
	// q holds the SETs and change ends not yet behind Position, in the
	// stream's order; q[0] has sequence number base. q[0] is never
	// acknowledged nor a mark (pop removes those), so a SET at index 0 has
	// no earlier unacknowledged SET.
	q    []slot
	base int64
	// from: no unsent slot before this index.
	from     int
	inFlight int
	lastSent string // jti of the SET sent last
	results  chan sent
	// failed: a SET failed; no new send until the window drained and the
	// backoff passed. lastErr is the last failure.
	failed  bool
	lastErr error
	backoff time.Duration
	stuck   string // the first unacknowledged SET at the last failure
	// stop, once set, ends the worker when nothing is in flight any more;
	// then pauseWhy, when set, pauses the stream, and compacted pauses it
	// for the events lost.
	stop      error
	pauseWhy  string
	compacted bool
}

// runWindow is run for a stream with MaxInFlight > 1.
func (p *pusher) runWindow(ctx context.Context) error {
	t := p.t
	w, err := p.watch(ctx)
	if err != nil {
		return err
	}
	defer w.Close()
	// The log is read in its own goroutine, one change ahead, so that
	// acknowledgements are taken while it waits for the next change.
	rctx, stopReading := context.WithCancel(ctx)
	changes := make(chan next)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			ch, err := w.Next(rctx)
			select {
			case changes <- next{ch, err}:
			case <-rctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() { stopReading(); <-readerDone }()

	win := &window{p: p, n: min(p.st.MaxInFlight, MaxInFlight), results: make(chan sent, MaxInFlight), backoff: t.cfg.MinBackoff}
	var retry <-chan time.Time // the backoff after a failure
	var flushC <-chan time.Time
	var flushT *time.Timer
	defer func() {
		if flushT != nil {
			flushT.Stop()
		}
	}()
	for {
		if win.stop == nil && ctx.Err() != nil {
			win.stop = errStop
		}
		if win.stop == nil && !win.failed {
			win.fill(ctx)
		}
		if win.inFlight == 0 {
			if win.stop != nil {
				return win.finish(ctx)
			}
			if win.failed && retry == nil {
				retry = win.wait()
			}
		}
		// Read on only when every SET read is sent and the window has room.
		var in <-chan next
		if win.stop == nil && !win.failed && win.from == len(win.q) && win.inFlight < win.n && len(win.q) < maxQueued {
			in = changes
		}
		if p.pos != p.written && flushC == nil { // write Position once quiet for positionEvery
			flushT = time.NewTimer(positionEvery)
			flushC = flushT.C
		}
		done := ctx.Done()
		if win.stop != nil {
			done = nil // stopping: only the POSTs in flight are awaited
		}
		select {
		case <-done:
			win.stop = errStop // the POSTs in flight end with ctx
			retry = nil
		case r := <-win.results:
			win.settle(ctx, r)
		case c := <-in:
			win.take(c)
		case <-retry:
			retry, win.failed = nil, false
		case <-flushC:
			flushC = nil
			if ctx.Err() == nil {
				p.flush(ctx)
			}
		}
		if p.pos != p.written && ctx.Err() == nil && time.Since(p.wroteAt) >= positionEvery {
			p.flush(ctx)
		}
	}
}

// take queues a change's SETs and its end, or records why the read ended.
func (win *window) take(c next) {
	p := win.p
	if c.err != nil {
		if errors.Is(c.err, storage.ErrCompacted) {
			win.stop, win.compacted = errStop, true
		} else {
			win.stop = c.err // the store failed: push follows the log again
		}
		return
	}
	for _, s := range p.t.setsFor(p.st, c.ch) {
		win.q = append(win.q, slot{p: s})
	}
	win.q = append(win.q, slot{p: pending{revision: c.ch.Revision}, mark: true})
	win.pop()
	if c.ch.Revision > p.since && changesStream(c.ch, p.st.ID) {
		// Reconfigured, paused or deleted from here on: the worker Run
		// starts with the new record, if any, sends what is not
		// acknowledged from Position.
		win.stop = errStop
	}
}

// fill sends unsent SETs, in order, while the window has room.
func (win *window) fill(ctx context.Context) {
	for win.inFlight < win.n {
		for win.from < len(win.q) && (win.q[win.from].mark || win.q[win.from].state != unsent) {
			win.from++
		}
		if win.from == len(win.q) {
			return
		}
		i := win.from
		s := &win.q[i]
		s.state = inFlight
		win.inFlight++
		set := s.p
		if i > 0 { // q[0] is unacknowledged and earlier: the PrevJTI rule
			set.set.PrevJTI = win.lastSent
		}
		win.lastSent = set.set.JTI
		seq, st, p := win.base+int64(i), win.p.st, win.p // st: a copy, the worker goes on writing its own
		go func() {
			raw, err := p.t.sign(ctx, st, set)
			code := 0
			if err == nil {
				code, err = p.t.post(ctx, &st, raw)
			}
			win.results <- sent{seq: seq, code: code, err: err}
		}()
	}
}

// settle takes one POST's outcome.
func (win *window) settle(ctx context.Context, r sent) {
	p, t := win.p, win.p.t
	win.inFlight--
	i := int(r.seq - win.base)
	s := &win.q[i]
	switch {
	case r.err == nil && r.code >= 200 && r.code < 300:
		s.state = acked
		p.c.delivered.Add(1)
		if !p.st.OutageSince.IsZero() {
			p.setOutage(ctx, time.Time{}, "")
		}
	case r.code == http.StatusBadRequest:
		s.state = acked
		p.c.skipped.Add(1)
		t.log.Warn("SSF push: the receiver refused a SET; skipped", "stream", p.st.ID, "jti", s.p.set.JTI, "error", r.err)
	case ctx.Err() != nil: // stopped: unacknowledged, sent again from Position
		s.state = unsent
	default:
		s.state = unsent
		win.from = min(win.from, i)
		p.c.failed.Add(1)
		err := r.err
		if err == nil {
			err = fmt.Errorf("receiver answered %d", r.code)
		}
		win.failed, win.lastErr = true, err
		now := t.now()
		if p.st.OutageSince.IsZero() {
			p.setOutage(ctx, now, err.Error())
		} else if now.Sub(p.st.OutageSince) >= t.cfg.MaxOutage && win.stop == nil {
			win.stop, win.pauseWhy = errStop, fmt.Sprintf("the receiver failed for %s (since %s): %s", t.cfg.MaxOutage,
				p.st.OutageSince.Format(time.RFC3339), err)
		}
	}
	win.pop()
}

// pop drops the acknowledged SETs and change ends at the front, moving
// Position to the last change end dropped.
func (win *window) pop() {
	k := 0
	for k < len(win.q) && (win.q[k].mark || win.q[k].state == acked) {
		if win.q[k].mark {
			win.p.pos = win.q[k].p.revision
		}
		k++
	}
	if k == 0 {
		return
	}
	win.q = win.q[k:]
	win.base += int64(k)
	win.from = max(win.from-k, 0)
	if len(win.q) == 0 {
		win.q = nil // let the backing array go
	}
}

// wait starts the backoff after a failed round, the window drained: it
// doubles while the same first SET keeps failing, from MinBackoff.
func (win *window) wait() <-chan time.Time {
	p, t := win.p, win.p.t
	first := ""
	if len(win.q) > 0 {
		first = win.q[0].p.set.JTI
	}
	if first != win.stuck {
		win.stuck, win.backoff = first, t.cfg.MinBackoff
	}
	d := win.backoff
	win.backoff = min(2*win.backoff, t.cfg.MaxBackoff)
	t.log.Info("SSF push failed; retrying", "stream", p.st.ID, "jti", first, "error", win.lastErr, "backoff", d)
	return time.After(d)
}

// finish ends the worker once nothing is in flight: Position of the
// acknowledged prefix, then the pause it found due, if any.
func (win *window) finish(ctx context.Context) error {
	p, t := win.p, win.p.t
	if ctx.Err() != nil {
		return errStop // push writes Position
	}
	p.flush(ctx)
	switch {
	case win.compacted:
		t.pauseCompacted(ctx, p.st.ID, p.pos)
	case win.pauseWhy != "":
		t.pause(ctx, p.st.ID, win.pauseWhy)
	}
	return win.stop
}
