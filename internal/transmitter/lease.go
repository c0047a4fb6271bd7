package transmitter

import (
	"context"
	"errors"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// The push lease: every replica runs a worker for each enabled push
// stream, but only the one holding the stream's lease (SignalStream.Pusher
// until PushLeaseUntil) delivers it, so that a receiver gets each SET once
// rather than once per replica. The holder renews the lease every
// PushLease/3 and gives it up when it stops; the others try to take it
// every LeaseRetry, which they can once it was given up or has run out (a
// replica that crashed). Lease writes carry no event, like Position's.
//
// Delivery stays at least once across a change of holder: the new holder
// starts from the stored Position, which the old one wrote at most
// positionEvery before it stopped; a SET redelivered then carries the same
// jti. Lease times are read on each replica's clock: their skew must stay
// well under PushLease.

// The log messages of a change of holder.
const (
	// MsgStandby: another replica holds the stream's lease; this one
	// waits to take it over.
	MsgStandby = "SSF push: another replica delivers the stream; standing by"
	// MsgLeaseTaken: this replica took over a stream another one held.
	MsgLeaseTaken = "SSF push: took the stream over from another replica"
	// MsgLeaseLost: another replica took the lease while this one held it
	// (this one stalled past PushLease); this one stops delivering.
	MsgLeaseLost = "SSF push: another replica took the stream's push lease; this one stops delivering it"
)

// acquire waits until this replica holds the stream's push lease and
// returns the stream as of then (its Position is where the previous holder
// stopped). ok is false when ctx ended or the stream is gone.
func (t *Transmitter) acquire(ctx context.Context, id string) (st storage.SignalStream, ok bool) {
	standby := ""
	for {
		held, err := t.claim(ctx, id, &st)
		switch {
		case held:
			if standby != "" {
				t.log.Info(MsgLeaseTaken, "stream", id, "from", standby)
			}
			return st, true
		case errors.Is(err, storage.ErrNotFound):
			return st, false
		case err != nil && ctx.Err() == nil:
			t.log.Warn("SSF push: taking the stream's push lease failed; retrying", "stream", id, "error", err)
		case err == nil && st.Pusher != standby:
			standby = st.Pusher
			t.log.Info(MsgStandby, "stream", id, "holder", st.Pusher, "until", st.PushLeaseUntil)
		}
		if sleep(ctx, t.cfg.LeaseRetry) != nil {
			return st, false
		}
	}
}

// claim takes or renews the lease when it is free, run out or already
// this replica's; it fills st with the stream's record.
func (t *Transmitter) claim(ctx context.Context, id string, st *storage.SignalStream) (held bool, err error) {
	_, err = t.cfg.Store.Update(ctx, func(tx storage.Tx) error {
		cur, err := tx.SignalStream(id)
		if err != nil {
			return err
		}
		now := t.now()
		held = cur.Pusher == "" || cur.Pusher == t.cfg.Holder || !now.Before(cur.PushLeaseUntil)
		*st = cur
		if !held {
			return nil
		}
		cur.Pusher, cur.PushLeaseUntil = t.cfg.Holder, now.Add(t.cfg.PushLease)
		*st = cur
		return tx.PutSignalStream(cur)
	})
	return held && err == nil, err
}

// keepLease renews the lease every PushLease/3 until ctx ends; when
// another replica took it meanwhile (this one stalled past PushLease) it
// calls lost and returns.
func (t *Transmitter) keepLease(ctx context.Context, id string, lost func()) {
	tick := time.NewTicker(t.cfg.PushLease / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var st storage.SignalStream
		held, err := t.claim(ctx, id, &st)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil && !held:
			t.log.Warn(MsgLeaseLost, "stream", id, "holder", st.Pusher)
			lost()
			return
		case err != nil && !errors.Is(err, storage.ErrNotFound):
			// The next tick tries again; the lease lasts three of them.
			t.log.Warn("SSF push: renewing the stream's push lease failed", "stream", id, "error", err)
		}
	}
}

// release gives the lease up, if this replica holds it, so that another
// replica takes the stream over at its next try rather than when the lease
// runs out.
func (t *Transmitter) release(ctx context.Context, id string) {
	_, err := t.cfg.Store.Update(ctx, func(tx storage.Tx) error {
		st, err := tx.SignalStream(id)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		if st.Pusher != t.cfg.Holder {
			return nil
		}
		st.Pusher, st.PushLeaseUntil = "", time.Time{}
		return tx.PutSignalStream(st)
	})
	if err != nil {
		t.log.Warn("SSF push: giving up the stream's push lease failed; it runs out by itself", "stream", id, "error", err)
	}
}
