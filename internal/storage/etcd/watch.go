package etcd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// logState is the log's position as of one linearizable read.
type logState struct {
	etcdRev      int64 // the cluster's revision at the read
	head         int64 // ModRevision of the log key: the last change (0: none)
	compacted    int64 // the compaction mark (Store.Compact)
	compactedMod int64 // ModRevision of the mark's key (0: absent)
}

func (s *Store) readLogState(ctx context.Context) (logState, error) {
	resp, err := s.cli.Txn(ctx).Then(
		clientv3.OpGet(s.k.log, clientv3.WithKeysOnly()),
		clientv3.OpGet(s.k.metaCompacted),
	).Commit()
	if err != nil {
		return logState{}, s.mapErr("read the log position", err)
	}
	st := logState{etcdRev: resp.Header.Revision}
	if kvs := resp.Responses[0].GetResponseRange().GetKvs(); len(kvs) == 1 {
		st.head = kvs[0].ModRevision
	}
	if kvs := resp.Responses[1].GetResponseRange().GetKvs(); len(kvs) == 1 {
		st.compactedMod = kvs[0].ModRevision
		if st.compacted, err = strconv.ParseInt(string(kvs[0].Value), 10, 64); err != nil {
			return logState{}, fmt.Errorf("%w: %s is %q", errCorrupt, s.k.metaCompacted, kvs[0].Value)
		}
	}
	return st, nil
}

// Watch returns a watcher of the changes after afterRevision: an etcd watch
// of the log key from afterRevision+1. It fails with storage.ErrCompacted
// when afterRevision is before the store's compaction mark, or when etcd
// compacted its history past afterRevision and a change was lost with it;
// with storage.ErrFutureRevision when afterRevision is after the last
// change. ctx bounds only this call.
func (s *Store) Watch(ctx context.Context, afterRevision int64) (storage.Watcher, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.closed() {
		return nil, storage.ErrClosed
	}
	ctx, done := s.opCtx(ctx)
	defer done()
	st, err := s.readLogState(ctx)
	if err != nil {
		return nil, err
	}
	if afterRevision > st.head {
		return nil, fmt.Errorf("storage/etcd: watch after %d, current revision is %d: %w", afterRevision, st.head, storage.ErrFutureRevision)
	}
	if afterRevision < st.compacted {
		return nil, fmt.Errorf("storage/etcd: watch after %d, compacted up to %d: %w", afterRevision, st.compacted, storage.ErrCompacted)
	}
	from := afterRevision + 1
	if from <= st.etcdRev {
		// Is the history still there? A read at from fails exactly when a
		// watch from there would.
		_, err := s.cli.Get(ctx, s.k.log, clientv3.WithRev(from), clientv3.WithKeysOnly())
		switch {
		case errors.Is(err, rpctypes.ErrCompacted):
			if st.head <= afterRevision {
				from = st.etcdRev + 1 // no change since: nothing was lost
				break
			}
			k, err := s.compactRevision(ctx, from)
			if err != nil {
				return nil, err
			}
			if k > 0 {
				if from, err = s.resumeAfterCompaction(ctx, afterRevision, k); err != nil {
					return nil, err
				}
			}
		case err != nil:
			return nil, s.mapErr("watch", err)
		}
	}
	s.hub.start(st.head, st.etcdRev)
	w := &watcher{s: s, from: from}
	w.rev.Store(afterRevision)
	w.ctx, w.cancel = context.WithCancel(s.ctx)
	return w, nil
}

// compactRevision learns etcd's compaction revision from a watch that
// starts before it (etcd says so in the watch's first response). It returns
// 0 if the watch delivers events instead (the history is there after all).
func (s *Store) compactRevision(ctx context.Context, from int64) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for resp := range s.cli.Watch(ctx, s.k.log, clientv3.WithRev(from)) {
		switch {
		case resp.CompactRevision != 0:
			return resp.CompactRevision, nil
		case resp.Err() != nil:
			return 0, s.mapErr("watch", resp.Err())
		case len(resp.Events) > 0:
			return 0, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, s.mapErr("watch", err)
	}
	return 0, errors.New("storage/etcd: watch ended while looking for etcd's compaction revision")
}

// resumeAfterCompaction decides whether a watcher at rev can go on after
// etcd compacted its history up to k (exclusive): it can, from k, if the
// log key did not change in (rev, k), which the version of the log key
// retained at k tells. Otherwise a change is gone: storage.ErrCompacted.
func (s *Store) resumeAfterCompaction(ctx context.Context, rev, k int64) (int64, error) {
	resp, err := s.cli.Get(ctx, s.k.log, clientv3.WithRev(k), clientv3.WithKeysOnly())
	switch {
	case errors.Is(err, rpctypes.ErrCompacted):
		return 0, fmt.Errorf("storage/etcd: watcher at %d, etcd compacted its history past %d: %w", rev, k, storage.ErrCompacted)
	case err != nil:
		return 0, s.mapErr("watch", err)
	}
	if len(resp.Kvs) == 1 && resp.Kvs[0].ModRevision > rev {
		return 0, fmt.Errorf("storage/etcd: watcher at %d, etcd compacted its history up to %d, which held later changes: %w", rev, k, storage.ErrCompacted)
	}
	return k, nil
}

// watcher takes the changes from the store's hub while the hub holds every
// change after the watcher's revision (a watcher at or near the head).
// Otherwise it reads them with a follower of its own (follow.go), until it
// has caught up with the hub's window.
type watcher struct {
	s         *Store
	rev       atomic.Int64
	ctx       context.Context // cancelled by Close and by the store's Close
	cancel    context.CancelFunc
	closeOnce sync.Once

	// Owned by Next's goroutine.
	from    int64     // where an etcd watch of the log would start
	own     *follower // nil while the hub covers the watcher
	buf     []storage.Change
	pos     int
	entries []*storage.Entry // scratch for ring lookups
}

// watchPage is how many changes a watcher takes from the ring at once.
const watchPage = 128

var _ storage.Watcher = (*watcher)(nil)

func (w *watcher) Revision() int64 { return w.rev.Load() }

func (w *watcher) Close() {
	w.closeOnce.Do(func() {
		w.cancel()
	})
}

// Next returns the next change after Revision.
func (w *watcher) Next(ctx context.Context) (storage.Change, error) {
	for {
		if w.ctx.Err() != nil {
			w.leave()
			return storage.Change{}, storage.ErrClosed
		}
		if w.pos < len(w.buf) {
			c := w.buf[w.pos]
			w.pos++
			w.rev.Store(c.Revision)
			w.from = c.Revision + 1
			return c, nil
		}
		if err := ctx.Err(); err != nil {
			return storage.Change{}, err
		}
		rev := w.rev.Load()
		if w.own != nil && w.s.hub.ring.Covers(rev) {
			w.leave() // caught up: the hub has everything from here on
		}
		if w.own == nil {
			es, wake, covered := w.s.hub.ring.After(rev, w.entries[:0], watchPage)
			if covered {
				w.entries = es
				if len(es) > 0 {
					w.buf, w.pos = w.buf[:0], 0
					for i, e := range es {
						c, _ := e.Change() // decoded by the hub already
						w.buf = append(w.buf, c)
						es[i] = nil
					}
					continue
				}
				select {
				case <-wake:
					continue
				case <-ctx.Done():
					return storage.Change{}, ctx.Err()
				case <-w.ctx.Done():
					return storage.Change{}, storage.ErrClosed
				}
			}
			w.own = w.s.newFollower(w.ctx, rev, w.from)
		}
		cs, err := w.own.next(ctx)
		if err != nil {
			return storage.Change{}, err
		}
		w.buf, w.pos = cs, 0
	}
}

// leave ends the watcher's own follower, if any.
func (w *watcher) leave() {
	if w.own != nil {
		w.own.close()
		w.own = nil
	}
	w.buf, w.pos = nil, 0
}

// Compact raises the store's compaction mark to revision: afterwards Watch
// refuses any revision before it. It does not compact etcd: etcd's history
// (the log key's versions, and every other key's) is shared by everything
// in the cluster, and its own compaction (--auto-compaction-mode and
// --auto-compaction-retention) bounds it. A watcher that falls behind
// etcd's compaction gets storage.ErrCompacted too.
func (s *Store) Compact(ctx context.Context, revision int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed() {
		return storage.ErrClosed
	}
	ctx, done := s.opCtx(ctx)
	defer done()
	for {
		st, err := s.readLogState(ctx)
		if err != nil {
			return err
		}
		if revision > st.head {
			return fmt.Errorf("storage/etcd: compact to %d, current revision is %d: %w", revision, st.head, storage.ErrFutureRevision)
		}
		if revision <= st.compacted {
			return nil
		}
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(s.k.metaCompacted), "=", st.compactedMod)).
			Then(clientv3.OpPut(s.k.metaCompacted, strconv.FormatInt(revision, 10))).
			Commit()
		if err != nil {
			return s.mapErr("compact", err)
		}
		if resp.Succeeded {
			return nil
		}
	}
}
