package transmitter

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/ssf"
)

// worker is one running push worker.
type worker struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Run delivers the push streams and announces expired bans until ctx
// ends, on every replica. It follows the event log: at start and on every
// signal.stream.* event it (re)starts the push worker of each enabled
// push stream, with the stream's new configuration, and stops the others.
// It returns once every worker has stopped and written its Position.
func (t *Transmitter) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { t.announce(ctx) })
	workers := map[string]*worker{}
	defer func() {
		for id := range workers {
			t.stopWorker(workers, id)
		}
		wg.Wait()
	}()
	backoff := t.cfg.MinBackoff
	for ctx.Err() == nil {
		err := t.follow(ctx, workers)
		if ctx.Err() != nil {
			return
		}
		t.log.Warn("SSF transmitter: following the event log failed; retrying", "error", err)
		if sleep(ctx, backoff) != nil {
			return
		}
		backoff = min(2*backoff, t.cfg.MaxBackoff)
	}
}

// follow reconciles every stream, then each one the log names, until the
// log fails.
func (t *Transmitter) follow(ctx context.Context, workers map[string]*worker) error {
	var rev int64
	var ids []string
	err := t.cfg.Store.View(ctx, func(tx storage.ReadTx) error {
		rev, ids = tx.Revision(), ids[:0]
		for st, err := range tx.SignalStreams() {
			if err != nil {
				return err
			}
			ids = append(ids, st.ID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	w, err := t.cfg.Store.Watch(ctx, rev)
	if err != nil {
		return err
	}
	defer w.Close()
	seen := map[string]bool{}
	for _, id := range ids {
		seen[id] = true
		t.reconcile(ctx, workers, id, rev)
	}
	for id := range workers {
		if !seen[id] {
			t.stopWorker(workers, id)
		}
	}
	for {
		ch, err := w.Next(ctx)
		if err != nil {
			return err
		}
		for _, ev := range ch.Events {
			switch ev.Kind {
			case storage.EventSignalStreamUpdated, storage.EventSignalStreamDeleted:
				if ev.Signal != nil {
					t.reconcile(ctx, workers, ev.Signal.StreamID, ch.Revision)
				}
			case storage.EventBanCreated:
				// A temporary full user ban may expire before the
				// announcer's next wake-up; any ban lets it look at the
				// clock.
				var at time.Time
				if b := ev.Ban; b != nil && b.Kind == storage.SubjectUser && b.Full() {
					at = b.ExpireTime
				}
				t.noteExpiry(at)
			}
		}
	}
}

// reconcile stops the stream's worker and starts a new one if the stream
// is an enabled push stream, as of revision since (or later).
func (t *Transmitter) reconcile(ctx context.Context, workers map[string]*worker, id string, since int64) {
	t.stopWorker(workers, id) // it writes its Position before the new one reads it
	var st storage.SignalStream
	err := t.cfg.Store.View(ctx, func(tx storage.ReadTx) (err error) {
		st, err = tx.SignalStream(id)
		return err
	})
	if errors.Is(err, storage.ErrNotFound) { // deleted: forget its counts
		t.mu.Lock()
		delete(t.counters, id)
		delete(t.lastVerify, id)
		t.mu.Unlock()
		return
	} else if err != nil {
		t.log.Warn("SSF transmitter: reading a stream failed", "stream", id, "error", err)
		return
	}
	if st.Status != StatusEnabled || st.DeliveryMethod != ssf.DeliveryPush {
		return
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &worker{cancel: cancel, done: make(chan struct{})}
	workers[id] = w
	go func() {
		defer close(w.done)
		t.push(wctx, id, since)
	}()
}

func (t *Transmitter) stopWorker(workers map[string]*worker, id string) {
	if w, ok := workers[id]; ok {
		w.cancel()
		<-w.done
		delete(workers, id)
	}
}

// announceEvery bounds the announcer's sleep: a safety net only, since
// every ban that can expire reaches it through the log (noteExpiry).
const announceEvery = time.Hour

// announce calls AnnounceExpiredBans (a scan of every ban) when the
// earliest temporary full user ban it knows of expires: its ban.expired
// events become account-enabled SETs. A new ban's expiry reaches it
// through noteExpiry and only moves that wake-up earlier: a burst of bans
// costs no scan per ban.
func (t *Transmitter) announce(ctx context.Context) {
	for ctx.Err() == nil {
		next, err := t.cfg.Authority.AnnounceExpiredBans(ctx)
		if err != nil && ctx.Err() == nil {
			t.log.Warn("SSF transmitter: announcing expired bans failed", "error", err)
			next = t.cfg.Clock().Add(time.Minute) // retry
		}
		for ctx.Err() == nil {
			wait := announceEvery
			if !next.IsZero() {
				wait = min(wait, max(next.Sub(t.cfg.Clock()), 0))
			}
			tm := time.NewTimer(wait)
			woke := false
			select {
			case <-ctx.Done():
			case <-tm.C:
				woke = true
			case <-t.kick:
				if at := t.takeExpiry(); !at.IsZero() && (next.IsZero() || at.Before(next)) {
					next = at
				}
				// Due by the clock (an injected clock moves without the
				// timer): scan now.
				woke = !next.IsZero() && !t.cfg.Clock().Before(next)
			}
			tm.Stop()
			if woke {
				break // scan
			}
		}
	}
}

// noteExpiry tells the announcer of a new ban, which expires at at (zero:
// never, or not a ban it announces) and wakes it to look at the clock.
func (t *Transmitter) noteExpiry(at time.Time) {
	if !at.IsZero() {
		t.mu.Lock()
		if t.earliest.IsZero() || at.Before(t.earliest) {
			t.earliest = at
		}
		t.mu.Unlock()
	}
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// takeExpiry returns the earliest expiry noted since the last call.
func (t *Transmitter) takeExpiry() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	at := t.earliest
	t.earliest = time.Time{}
	return at
}
