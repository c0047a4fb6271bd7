package transmitter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/ssf"
)

// Bounds of one poll.
const (
	defaultMaxEvents = 100
	maxMaxEvents     = 1000
	maxAcks          = 10000
)

// Poll answers a poll request on a poll stream (RFC 8936): it records the
// acknowledgements (ack, and setErrs, which acknowledge a SET the receiver
// refused), moves the stream's Position past what is acknowledged, and
// returns up to maxEvents SETs not yet acknowledged, oldest first: every
// unacknowledged SET is delivered again until it is acknowledged. Without
// returnImmediately it waits up to PollWait for a SET. A paused or
// disabled stream returns none; one whose Position the log no longer
// holds is paused and fails with storage.ErrCompacted.
func (t *Transmitter) Poll(ctx context.Context, c Caller, id string, in ssf.PollRequest) (ssf.PollResponse, error) {
	limit := defaultMaxEvents
	if in.MaxEvents != nil {
		limit = min(max(*in.MaxEvents, 0), maxMaxEvents)
	}
	acks := slices.Clone(in.Ack)
	for j := range in.SetErrs {
		acks = append(acks, j)
	}
	if len(acks) > maxAcks {
		return ssf.PollResponse{}, invalid("ack", "at most %d acknowledgements per request", maxAcks)
	}
	var st storage.SignalStream
	_, err := t.cfg.Store.Update(ctx, func(tx storage.Tx) (err error) {
		if st, err = owned(tx, c, id); err != nil {
			return err
		}
		if st.DeliveryMethod != ssf.DeliveryPoll {
			return invalid("stream_id", "stream %s delivers by push, not poll", id)
		}
		n := len(st.Acked)
		for _, j := range acks {
			// Only this stream's SETs beyond Position need remembering.
			if rev, ok := jtiRevision(id, j); ok && rev > st.Position && !slices.Contains(st.Acked, j) {
				st.Acked = append(st.Acked, j)
			}
		}
		if len(st.Acked) == n {
			return nil
		}
		return tx.PutSignalStream(st)
	})
	if err != nil {
		return ssf.PollResponse{}, err
	}
	t.count(id).polls.Add(1)
	for j, e := range in.SetErrs {
		t.log.Warn("SSF poll: the receiver refused a SET", "stream", id, "jti", j, "err", e.Err, "description", e.Description)
	}

	if st.Status == StatusDisabled { // it holds nothing
		return ssf.PollResponse{Sets: map[string]string{}}, nil
	}
	w, err := t.cfg.Store.Watch(ctx, st.Position)
	if errors.Is(err, storage.ErrCompacted) {
		t.pauseCompacted(ctx, id, st.Position)
		return ssf.PollResponse{}, fmt.Errorf("stream %s: %w: the events after revision %d are no longer held; the stream is paused",
			id, storage.ErrCompacted, st.Position)
	} else if err != nil {
		return ssf.PollResponse{}, err
	}
	defer w.Close()
	resp := ssf.PollResponse{Sets: map[string]string{}}
	if st.Status != StatusEnabled {
		return resp, nil
	}
	var cur int64
	if err := t.cfg.Store.View(ctx, func(tx storage.ReadTx) error { cur = tx.Revision(); return nil }); err != nil {
		return ssf.PollResponse{}, err
	}
	acked := map[string]bool{}
	for _, j := range st.Acked {
		acked[j] = true
	}
	// pos: every SET through it is acknowledged; first: the revision of
	// the first SET that is not.
	pos, first := st.Position, int64(0)
	var out []pending
	more := false
	wait := !in.ReturnImmediately && limit > 0
	waitCtx, cancel := context.WithTimeout(ctx, t.cfg.PollWait)
	defer cancel()
	for !more {
		caughtUp := w.Revision() >= cur
		if caughtUp && (len(out) > 0 || !wait) {
			break
		}
		next := ctx
		if caughtUp {
			next = waitCtx
		}
		ch, err := w.Next(next)
		if err != nil {
			if caughtUp && waitCtx.Err() != nil && ctx.Err() == nil {
				break // waited PollWait for nothing
			}
			if errors.Is(err, storage.ErrCompacted) {
				t.pauseCompacted(ctx, id, st.Position)
			}
			return ssf.PollResponse{}, err
		}
		for _, p := range t.setsFor(st, ch) {
			if acked[p.set.JTI] {
				continue
			}
			if first == 0 {
				first = p.revision
			}
			if len(out) == limit {
				more = true
				break
			}
			out = append(out, p)
		}
		if first == 0 {
			pos = ch.Revision
		} else {
			pos = max(pos, first-1)
		}
	}
	if pos > st.Position {
		if err := t.advance(ctx, id, pos, func(j string) bool {
			rev, ok := jtiRevision(id, j)
			return !ok || rev <= pos
		}); err != nil {
			return ssf.PollResponse{}, err
		}
	}
	for _, p := range out {
		raw, err := t.sign(ctx, st, p)
		if err != nil {
			return ssf.PollResponse{}, err
		}
		resp.Sets[p.set.JTI] = raw
	}
	resp.MoreAvailable = more
	return resp, nil
}

// jtiRevision is the revision in one of the stream's jti values.
func jtiRevision(stream, jti string) (int64, bool) {
	rest, ok := strings.CutPrefix(jti, stream+"-")
	if !ok {
		return 0, false
	}
	revText, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	rev, err := strconv.ParseInt(revText, 10, 64)
	return rev, err == nil
}
