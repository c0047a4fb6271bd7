package etcd

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// follower reads the changes after last from etcd watches of the log key.
// It is the one place of the backend that turns etcd watch responses into
// changes, for the hub (one follower for every watcher near the head) and
// for a watcher behind the hub's window (its own): it resumes a watch that
// etcd ended (after a pause, doubling while that repeats), goes on after
// etcd's compaction when the compacted history held no change, refuses a
// deleted log (the prefix was wiped), decodes, and drops the changes at or
// before last (a resumed watch delivers some again).
//
// A follower is used by one goroutine. Once next has failed it keeps
// failing with the same error.
type follower struct {
	s    *Store
	ctx  context.Context // ends the follower: next then returns ErrClosed
	last int64           // the last change returned
	from int64           // where the next etcd watch starts

	ch       clientv3.WatchChan
	stop     context.CancelFunc
	restarts int // etcd ended that many watches in a row
	buf      []storage.Change
	err      error
}

// newFollower returns a follower of the changes after last, whose first
// etcd watch starts at from (last+1, or later when the history between is
// known to hold no change).
func (s *Store) newFollower(ctx context.Context, last, from int64) *follower {
	return &follower{s: s, ctx: ctx, last: last, from: from}
}

// next returns the next changes (at least one), in revision order; the
// slice is valid until the next call. It fails with storage.ErrCompacted
// when a change was lost (to etcd's compaction, or with the wiped log),
// with the error of an undecodable change, with ctx's error, or with
// storage.ErrClosed when the follower's context ended.
func (f *follower) next(ctx context.Context) ([]storage.Change, error) {
	f.buf = f.buf[:0]
	for f.err == nil {
		if f.ch == nil {
			if err := f.pause(ctx); err != nil {
				return nil, err
			}
			wctx, stop := context.WithCancel(clientv3.WithRequireLeader(f.ctx))
			f.ch, f.stop = f.s.cli.Watch(wctx, f.s.k.log, clientv3.WithRev(f.from)), stop
		}
		select {
		case resp, ok := <-f.ch:
			if !ok {
				f.restart()
				continue
			}
			f.handle(ctx, resp)
			if len(f.buf) > 0 {
				return f.buf, nil
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-f.ctx.Done():
			f.fail(storage.ErrClosed)
		}
	}
	return nil, f.err
}

// handle takes one etcd watch response: its new changes go to buf; a
// failure is kept in err, after the changes before it.
func (f *follower) handle(ctx context.Context, resp clientv3.WatchResponse) {
	switch {
	case resp.CompactRevision != 0:
		f.close()
		from, err := f.s.resumeAfterCompaction(ctx, f.last, resp.CompactRevision)
		switch {
		case f.ctx.Err() != nil:
			f.fail(storage.ErrClosed)
		case ctx.Err() != nil:
			// The caller gave up, not etcd: the next call asks again.
		case err != nil:
			f.fail(err)
		default:
			f.from = max(from, f.last+1)
		}
		return
	case resp.Canceled || resp.Err() != nil:
		if f.ctx.Err() == nil {
			f.s.log.Warn("etcd ended a watch of the event log; watching again", "after", f.last, "err", resp.Err())
		}
		f.restart()
		return
	}
	for _, ev := range resp.Events {
		if ev.Kv.ModRevision <= f.last {
			continue // delivered already (a resumed watch)
		}
		if ev.Type == mvccpb.DELETE {
			f.fail(fmt.Errorf("storage/etcd: the event log was deleted at revision %d (the prefix was wiped): %w", ev.Kv.ModRevision, storage.ErrCompacted))
			return
		}
		c, err := decodeChange(ev.Kv.ModRevision, ev.Kv.Value)
		if err != nil {
			f.fail(err)
			return
		}
		f.buf = append(f.buf, c)
		f.last = c.Revision
	}
	f.from = f.last + 1
	if len(resp.Events) > 0 {
		f.restarts = 0
	}
}

// restart ends the current etcd watch; the next one starts after a pause.
func (f *follower) restart() {
	f.close()
	f.restarts++
}

func (f *follower) fail(err error) {
	f.close()
	f.err = err
}

// close ends the current etcd watch, if any.
func (f *follower) close() {
	if f.stop != nil {
		f.stop()
		f.stop = nil
	}
	f.ch = nil
}

// pause waits before watching again after etcd ended a watch: 50ms at
// first, doubling to 2s while it keeps doing so.
func (f *follower) pause(ctx context.Context) error {
	if f.restarts == 0 {
		return nil
	}
	t := time.NewTimer(restartDelay(f.restarts))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-f.ctx.Done():
		f.fail(storage.ErrClosed)
		return f.err
	}
}

// restartDelay is the pause before the nth attempt in a row to follow the
// log again: 50ms, doubling to 2s.
func restartDelay(n int) time.Duration {
	return min(50*time.Millisecond<<min(n-1, 6), 2*time.Second)
}
