package receiver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// maxRun bounds the SETs one transaction applies.
const maxRun = 256

// runTimeout bounds the application of one run: a store that does not
// answer fails the run (its SETs are sent again) rather than hold every
// push of the transmitter.
const runTimeout = 30 * time.Second

// maxWaiting bounds the SETs one transmitter has waiting for their
// predecessors (a transmitter keeps at most transmitter.MaxInFlight in
// flight): past it a SET is refused as retryable at once.
const maxWaiting = 1024

// recentKept is how many applied jtis a sequencer remembers, so that most
// SETs find their predecessor without a read of the store.
const recentKept = 4096

// sequencer puts one transmitter's pushed SETs in the stream's order and
// applies them in runs, one transaction per run (group commit). A SET that
// names a predecessor (ssf.SET.PrevJTI, sent by a transmitter keeping
// several in flight) waits until that one is applied, at most the hold
// time; one that names none is ready at once. While a run commits, the
// SETs that arrive gather into the next: one drain goroutine applies runs
// while any SET is ready, then ends.
//
// A SET is answered only once applied, so the acknowledgements a
// transmitter sees are always a prefix of the stream's order: a
// predecessor it has seen acknowledged is applied, and one it has not will
// be sent again.
type sequencer struct {
	hold  time.Duration
	apply func(context.Context, []*item)
	// known reports whether a SET of this transmitter with one of these
	// jtis was applied (the store's records, in one read): a predecessor
	// applied before a restart, or long enough ago to be forgotten.
	known func(ctx context.Context, jtis ...string) bool

	mu      sync.Mutex
	ready   []*item            // in arrival order
	waiting map[string][]*item // by the jti of the predecessor they wait for
	nwait   int                // items in waiting
	running bool               // a drain goroutine is applying runs
	recent  map[string]bool    // applied (or refused) jtis, the last recentKept
	order   []string           // recent's jtis, oldest first (a ring)
	next    int
}

func newSequencer(hold time.Duration, apply func(context.Context, []*item), known func(context.Context, ...string) bool) *sequencer {
	return &sequencer{hold: hold, apply: apply, known: known, waiting: map[string][]*item{}, recent: map[string]bool{}}
}

// submit queues it and waits for its outcome: nil once applied, the error
// that refused it, ErrSETPredecessorMissing when its predecessor was not
// applied within the hold time, or ctx's error. A SET that was taken into
// a run is always waited for: its run is one transaction.
func (s *sequencer) submit(ctx context.Context, it *item) error {
	prev, jti := it.set.PrevJTI, it.set.JTI
	// Ready: it names no predecessor, or one applied; or it was applied
	// itself (a redelivery, which only needs its answer).
	s.mu.Lock()
	ready := prev == "" || s.recent[prev] || s.recent[jti]
	s.mu.Unlock()
	if !ready {
		ready = s.known(ctx, prev, jti)
	}
	s.mu.Lock()
	ready = ready || s.recent[prev] // applied since the look above
	if ready {
		s.ready = append(s.ready, it)
		s.startDrain(ctx)
	} else if s.nwait >= maxWaiting {
		s.mu.Unlock()
		return fmt.Errorf("%w: %d SETs wait for their predecessors already; send %.128q first", ErrSETPredecessorMissing, s.nwait, prev)
	} else {
		s.waiting[prev] = append(s.waiting[prev], it)
		s.nwait++
	}
	s.mu.Unlock()

	timer := time.NewTimer(s.hold)
	defer timer.Stop()
	var err error
	select {
	case <-it.done:
		return it.err
	case <-timer.C:
		err = fmt.Errorf("%w: its predecessor %.128q was not applied within %s; send it first", ErrSETPredecessorMissing, prev, s.hold)
	case <-ctx.Done():
		err = ctx.Err()
	}
	if s.withdraw(it) {
		return err
	}
	<-it.done
	return it.err
}

// startDrain starts the drain goroutine unless it runs. s.mu is held.
func (s *sequencer) startDrain(ctx context.Context) {
	if s.running {
		return
	}
	s.running = true
	go s.drain(context.WithoutCancel(ctx))
}

// withdraw removes it if it still waits for its predecessor.
func (s *sequencer) withdraw(it *item) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := it.set.PrevJTI
	for i, w := range s.waiting[prev] {
		if w == it {
			s.waiting[prev] = append(s.waiting[prev][:i:i], s.waiting[prev][i+1:]...)
			s.nwait--
			if len(s.waiting[prev]) == 0 {
				delete(s.waiting, prev)
			}
			return true
		}
	}
	return false
}

// drain applies runs until none is ready. A run is the ready SETs, each
// followed by those waiting for it (and for them, in turn).
func (s *sequencer) drain(ctx context.Context) {
	for {
		s.mu.Lock()
		run := s.ready
		if len(run) > maxRun {
			run, s.ready = run[:maxRun:maxRun], run[maxRun:]
		} else {
			s.ready = nil
		}
		if len(run) == 0 {
			s.running = false
			s.mu.Unlock()
			return
		}
		for i := 0; i < len(run) && len(run) < maxRun; i++ {
			jti := run[i].set.JTI
			if next := s.waiting[jti]; len(next) > 0 && len(run)+len(next) <= maxRun {
				run = append(run, next...)
				s.nwait -= len(next)
				delete(s.waiting, jti)
			}
		}
		s.mu.Unlock()

		rctx, cancel := context.WithTimeout(ctx, runTimeout)
		s.apply(rctx, run)
		cancel()

		s.mu.Lock()
		for _, it := range run {
			// Applied, received before, or refused: its successors may
			// go. After a failure of our own they wait (and time out):
			// the transmitter sends it again first.
			if it.err == nil || isRefusal(it.err) || errors.Is(it.err, ErrSETReplayed) {
				s.remember(it.set.JTI)
				if next := s.waiting[it.set.JTI]; len(next) > 0 {
					s.ready = append(s.ready, next...)
					s.nwait -= len(next)
					delete(s.waiting, it.set.JTI)
				}
			}
			close(it.done)
		}
		s.mu.Unlock()
	}
}

// remember adds jti to recent, forgetting the oldest past recentKept.
// s.mu is held.
func (s *sequencer) remember(jti string) {
	if s.recent[jti] {
		return
	}
	if len(s.order) < recentKept {
		s.order = append(s.order, jti)
	} else {
		delete(s.recent, s.order[s.next])
		s.order[s.next] = jti
		s.next = (s.next + 1) % recentKept
	}
	s.recent[jti] = true
}
