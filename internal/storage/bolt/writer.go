package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"

	"go.etcd.io/bbolt"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// request is one Update waiting for the writer.
type request struct {
	ctx   context.Context
	fn    func(storage.Tx) error
	state atomic.Int32 // pending -> taken (writer) or pending -> cancelled (caller)
	done  chan struct{}
	rev   int64 // valid after done is closed
	err   error

	// Writer-only bookkeeping for the batch in progress.
	answered bool
	pending  int64 // revision to answer with if the commit succeeds
}

const (
	statePending int32 = iota
	stateTaken
	stateCancelled
)

// answer completes the request. Only the writer calls it, once.
func (r *request) answer(rev int64, err error) {
	r.answered = true
	r.rev, r.err = rev, err
	close(r.done)
}

// ErrPanicked wraps the panic of an update function, which Update returns
// instead of crashing the writer.
var ErrPanicked = errors.New("storage/bolt: update function panicked")

// Update queues fn for the writer and waits until it has been committed.
func (s *Store) Update(ctx context.Context, fn func(storage.Tx) error) (int64, error) {
	if fn == nil {
		return 0, errors.New("storage/bolt: nil update function")
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if s.closed() {
		return 0, storage.ErrClosed
	}
	r := &request{ctx: ctx, fn: fn, done: make(chan struct{})}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-s.closing:
		return 0, storage.ErrClosed
	}
	select {
	case <-r.done:
		return r.rev, r.err
	case <-ctx.Done():
		// Withdraw unless the writer took it already: then its result,
		// committed or not, is on its way and must be reported.
		if r.state.CompareAndSwap(statePending, stateCancelled) {
			return 0, ctx.Err()
		}
	case <-s.writerDone:
		// Queued after the writer's last batch: nobody will take it.
		if r.state.CompareAndSwap(statePending, stateCancelled) {
			return 0, storage.ErrClosed
		}
	}
	<-r.done
	return r.rev, r.err
}

// writeLoop is the single writer: it takes the first queued request, drains
// whatever else is queued already (no waiting: a lone caller pays no delay)
// and commits them together.
func (s *Store) writeLoop() {
	defer close(s.writerDone)
	batch := make([]*request, 0, s.opts.MaxBatch)
	for {
		select {
		case <-s.closing:
			return
		case r := <-s.reqs:
			batch = append(batch[:0], r)
		}
	drain:
		for len(batch) < s.opts.MaxBatch {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		s.runBatch(batch)
		clear(batch) // drop references to finished requests
	}
}

// runBatch commits the batch's functions in one transaction, retrying
// without the ones that fail until the rest commit.
//
// A function that fails after others of its transaction ran may have
// failed because of what they wrote, which the rollback undoes: answering
// its error then would tell the caller about writes that may never commit
// (a dirty read). Such a function runs again alone once the others have
// committed, and its answer is the one it gives on committed state (the
// rule bbolt's own DB.Batch follows).
func (s *Store) runBatch(batch []*request) {
	live := batch[:0:0]
	for _, r := range batch {
		if r.state.CompareAndSwap(statePending, stateTaken) {
			live = append(live, r)
		}
	}
	var alone []*request
	for len(live) > 0 {
		failed := s.attempt(live)
		if failed == nil {
			break
		}
		if !failed.answered {
			alone = append(alone, failed)
		}
		rest := live[:0]
		for _, r := range live {
			if !r.answered && r != failed {
				rest = append(rest, r)
			}
		}
		live = rest
	}
	for _, r := range alone {
		s.attempt([]*request{r}) // alone, a failure is answered: nothing ran before it
	}
}

// attempt runs every unanswered request of live in one bbolt transaction
// and commits it. When a function fails, it rolls back and returns that
// request, answered with its error only if no other function of the
// transaction ran before it; the caller must then run the others again.
// Otherwise every request has been answered and it returns nil.
func (s *Store) attempt(live []*request) (failed *request) {
	s.stats.attempts.Add(1)
	btx, err := s.db.Begin(true)
	if err != nil {
		s.answerAll(live, fmt.Errorf("storage/bolt: begin: %w", mapClosed(err)))
		return nil
	}
	committed := false
	defer func() {
		if !committed {
			_ = btx.Rollback()
		}
	}()
	rev, compacted, err := readCounters(btx)
	if err != nil {
		s.answerAll(live, err)
		return nil
	}
	start := rev
	var changes []*storage.Entry
	ran := 0
	for _, r := range live {
		if r.answered {
			continue
		}
		if err := r.ctx.Err(); err != nil {
			// Its function has not run in this transaction: nothing of it
			// will be committed.
			r.answer(0, err)
			continue
		}
		ran++
		t := newWriteTx(readTx{tx: btx, rev: rev, writable: true})
		err := s.call(r.fn, t)
		t.done = true
		if err == nil && len(t.Events) > 0 {
			var raw []byte
			if raw, err = putChange(btx, rev+1, t.Events); err == nil {
				rev++
				changes = append(changes, storage.NewEntry(rev, raw, decodeChange))
			}
		}
		if err != nil {
			if ran == 1 {
				r.answer(0, err) // it saw committed state only
			}
			return r
		}
		r.pending = rev
	}
	if ran == 0 {
		return nil // every caller gave up: nothing to commit
	}
	if rev != start {
		if err := putCounter(btx, metaRevision, rev); err != nil {
			s.answerAll(live, err)
			return nil
		}
	}
	newCompacted, err := trimEvents(btx, rev, compacted, s.opts.RetainRevisions, retentionChunk)
	if err != nil {
		s.answerAll(live, err)
		return nil
	}
	if err := btx.Commit(); err != nil {
		committed = true // bbolt rolled back already
		s.log.Error("commit failed", "err", err, "updates", len(live))
		s.answerAll(live, fmt.Errorf("storage/bolt: commit: %w", err))
		return nil
	}
	committed = true
	s.stats.commits.Add(1)
	s.raiseCompacted(newCompacted)
	if len(changes) > 0 {
		s.publish(changes)
	}
	for _, r := range live {
		if !r.answered {
			r.answer(r.pending, nil)
		}
	}
	return nil
}

// call runs fn, turning a panic into an error so that the writer survives.
func (s *Store) call(fn func(storage.Tx) error, t *writeTx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("update function panicked", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: %v", ErrPanicked, p)
		}
	}()
	return fn(t)
}

func (s *Store) answerAll(live []*request, err error) {
	for _, r := range live {
		if !r.answered {
			r.answer(0, err)
		}
	}
}

// putChange stores the events of one function as the change at rev.
func putChange(btx *bbolt.Tx, rev int64, events []json.RawMessage) ([]byte, error) {
	raw, err := json.Marshal(storedChange{Revision: rev, Events: events})
	if err != nil {
		return nil, fmt.Errorf("storage/bolt: encode change %d: %w", rev, err)
	}
	b := btx.Bucket(bucketEvents)
	if b == nil {
		return nil, fmt.Errorf("%w: bucket %s is missing", errCorrupt, bucketEvents)
	}
	if err := b.Put(revKey(rev), raw); err != nil {
		return nil, fmt.Errorf("storage/bolt: write change %d: %w", rev, err)
	}
	return raw, nil
}
