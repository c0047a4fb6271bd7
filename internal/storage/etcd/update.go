package etcd

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// ErrTooManyAttempts is returned by Update when other writers kept changing
// what its function read, Options.MaxAttempts times in a row. It matches
// storage.ErrConflict.
var ErrTooManyAttempts = fmt.Errorf("%w: storage/etcd: update gave up: concurrent writers kept changing what it read", storage.ErrConflict)

// Update runs fn against a snapshot and commits its writes with one etcd
// transaction that succeeds only if nothing fn read has changed since the
// snapshot (optimistic concurrency). Otherwise fn runs again on a fresh
// snapshot, up to Options.MaxAttempts times. The change fn emitted is
// written to the log key in the same transaction, so its revision is the
// transaction's etcd revision.
func (s *Store) Update(ctx context.Context, fn func(storage.Tx) error) (int64, error) {
	if fn == nil {
		return 0, errors.New("storage/etcd: nil update function")
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if s.closed() {
		return 0, storage.ErrClosed
	}
	ctx, done := s.opCtx(ctx)
	defer done()
	for attempt := 1; ; attempt++ {
		t := newTxn(s, ctx, true)
		// The first attempt is the fast one (serializable reads, new
		// records assumed new); one that lost a race reads carefully.
		careful := attempt > 1
		t.linearizable, t.assume = careful, !careful
		err := fn(t)
		t.done = true
		if t.stale && attempt < s.opts.MaxAttempts {
			continue // etcd compacted the snapshot under fn: take a new one
		}
		if err != nil {
			// An error decided on a snapshot that may be stale stands
			// only if the snapshot is still current.
			if careful || !t.readAny() || s.closed() || ctx.Err() != nil {
				return 0, err
			}
			if ok, verr := t.validate(); verr != nil || ok {
				return 0, err
			}
			s.stats.conflicts.Add(1)
			continue
		}
		if t.sticky != nil {
			return 0, t.sticky
		}
		rev, ok, err := t.commit()
		if err != nil {
			return 0, err
		}
		if ok {
			return rev, nil
		}
		s.stats.conflicts.Add(1)
		if attempt >= s.opts.MaxAttempts {
			return 0, fmt.Errorf("%w (%d attempts)", ErrTooManyAttempts, attempt)
		}
		if err := backoff(ctx, attempt); err != nil {
			return 0, s.mapErr("update", err)
		}
	}
}

// backoff waits before attempt+1: not at all for the first retries, then a
// random time growing up to 20ms, so that writers contending for the same
// keys spread out.
func backoff(ctx context.Context, attempt int) error {
	if attempt < 3 {
		return nil
	}
	limit := min(time.Millisecond<<min(attempt-3, 5), 20*time.Millisecond)
	t := time.NewTimer(rand.N(limit) + time.Millisecond/4)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// commit sends the transaction's writes, guarded by comparisons that hold
// only if nothing it read changed. It reports false when they did not hold.
func (t *txn) commit() (int64, bool, error) {
	if len(t.writes) == 0 && len(t.Events) == 0 {
		// Nothing to write: the function read a snapshot, which is a
		// valid answer if it is (or was, during the call) current.
		if t.linearizable {
			rev := t.Revision()
			return rev, t.sticky == nil, t.sticky
		}
		return t.validateRev()
	}
	cmps := t.compares()
	ops := make([]clientv3.Op, 0, len(t.writes)+len(t.guards)+1)
	for _, k := range slices.Sorted(maps.Keys(t.writes)) {
		if w := t.writes[k]; w.del {
			ops = append(ops, clientv3.OpDelete(k))
		} else {
			ops = append(ops, clientv3.OpPut(k, string(w.val)))
		}
	}
	for _, b := range slices.Sorted(maps.Keys(t.guards)) {
		ops = append(ops, clientv3.OpPut(t.k.guard(b), ""))
	}
	if len(t.Events) > 0 {
		raw, err := json.Marshal(storedChange{Events: t.Events})
		if err != nil {
			return 0, false, fmt.Errorf("storage/etcd: encode change: %w", err)
		}
		ops = append(ops, clientv3.OpPut(t.k.log, string(raw)))
	} else {
		// Report the revision current at the commit.
		ops = append(ops, clientv3.OpGet(t.k.log, clientv3.WithKeysOnly()))
	}
	resp, err := t.s.cli.Txn(t.ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return 0, false, t.s.commitErr(err, len(ops), len(cmps))
	}
	if !resp.Succeeded {
		return 0, false, nil
	}
	t.s.stats.commits.Add(1)
	if len(t.Events) > 0 {
		return resp.Header.Revision, true, nil
	}
	var rev int64
	if r := resp.Responses[len(resp.Responses)-1].GetResponseRange(); r != nil && len(r.Kvs) == 1 {
		rev = r.Kvs[0].ModRevision
	}
	return rev, true, nil
}

// validate reports whether everything the function read is still as it
// read it, with a read-only etcd transaction of the commit's comparisons.
func (t *txn) validate() (bool, error) {
	_, ok, err := t.validateRev()
	return ok, err
}

// validateRev is validate that also returns the log's current revision.
func (t *txn) validateRev() (int64, bool, error) {
	resp, err := t.s.cli.Txn(t.ctx).If(t.compares()...).Then(clientv3.OpGet(t.k.log, clientv3.WithKeysOnly())).Commit()
	if err != nil {
		return 0, false, t.s.mapErr("validate a read", err)
	}
	if !resp.Succeeded {
		return 0, false, nil
	}
	var rev int64
	if r := resp.Responses[0].GetResponseRange(); r != nil && len(r.Kvs) == 1 {
		rev = r.Kvs[0].ModRevision
	}
	return rev, true, nil
}

func (s *Store) commitErr(err error, ops, cmps int) error {
	switch {
	// Both bounds are reported as storage.ErrTxnTooLarge, which callers
	// answer by splitting their work; the text says which bound it was.
	case errors.Is(err, rpctypes.ErrTooManyOps):
		return fmt.Errorf("%w: storage/etcd: the update needs %d writes and %d comparisons in one etcd transaction, more than the cluster's --max-txn-ops allows (etcd's default is 128); raise it on every member if the caller cannot split its work: %w", storage.ErrTxnTooLarge, ops, cmps, err)
	case errors.Is(err, rpctypes.ErrRequestTooLarge):
		return fmt.Errorf("%w: storage/etcd: the update's etcd transaction (%d writes) is larger than the cluster's --max-request-bytes allows (etcd's default is 1.5 MiB): %w", storage.ErrTxnTooLarge, ops, err)
	case s.closed():
		return storage.ErrClosed
	}
	// The transaction may or may not have been applied: it is not retried,
	// since the function's reads may no longer hold.
	return fmt.Errorf("storage/etcd: commit (its outcome is unknown): %w", s.mapErr("commit", err))
}

// interval is one entry of a transaction's read set: a point read (a key
// and the ModRevision it had, 0 when absent) or a range [start, end).
type interval struct {
	start, end string
	point      bool
	modRev     int64
	assumed    bool // an assumed-absent point: never merged
}

// compares turns the read set into the transaction's comparisons:
//   - a key read: ModRevision(key) == the one seen (which catches a create,
//     an update and a delete);
//   - a range iterated: ModRevision of every key in it < rev+1 (catches a
//     create or an update inside), plus the bucket's guard key unchanged
//     since rev (catches a delete, which a range comparison cannot see).
//
// When that is more than Options.MaxTxnOps comparisons, neighbouring
// entries of one bucket are merged into covering ranges, closest first
// (longest common key prefix), which can only add false conflicts.
func (t *txn) compares() []clientv3.Cmp {
	byBucket := map[string][]interval{}
	for k, p := range t.points {
		byBucket[p.bucket] = append(byBucket[p.bucket], interval{start: k, end: k + "\x00", point: true, modRev: p.modRev, assumed: p.assumed})
	}
	for _, r := range t.observed {
		byBucket[r.bucket] = append(byBucket[r.bucket], interval{start: r.start, end: r.end})
	}
	buckets := slices.Sorted(maps.Keys(byBucket))
	count := 0
	for _, b := range buckets {
		byBucket[b] = normalize(byBucket[b])
		count += cost(byBucket[b])
	}
	for count > t.s.opts.MaxTxnOps {
		bestB, bestI, bestL := "", -1, -1
		for _, b := range buckets {
			ivs := byBucket[b]
			for i := 0; i+1 < len(ivs); i++ {
				if ivs[i].assumed || ivs[i+1].assumed {
					continue
				}
				if l := commonPrefix(ivs[i].start, ivs[i+1].start); l > bestL {
					bestB, bestI, bestL = b, i, l
				}
			}
		}
		if bestI < 0 {
			break // nothing left to merge
		}
		ivs := byBucket[bestB]
		count -= cost(ivs)
		merged := interval{start: ivs[bestI].start, end: max(ivs[bestI].end, ivs[bestI+1].end)}
		ivs = slices.Replace(ivs, bestI, bestI+2, merged)
		byBucket[bestB] = normalize(ivs)
		count += cost(byBucket[bestB])
	}
	next := t.rev + 1
	cmps := make([]clientv3.Cmp, 0, count)
	for _, b := range buckets {
		ranged := false
		for _, iv := range byBucket[b] {
			if iv.point {
				cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(iv.start), "=", iv.modRev))
				continue
			}
			ranged = true
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(iv.start).WithRange(iv.end), "<", next))
		}
		if ranged {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(t.k.guard(b)), "<", next))
		}
	}
	return cmps
}

// normalize sorts a bucket's read set and merges ranges that overlap or
// touch, dropping the point reads they cover (the bucket's guard then
// catches their deletion), except assumed-absent keys: a range comparison
// cannot tell that a key existed all along.
func normalize(ivs []interval) []interval {
	slices.SortFunc(ivs, func(a, b interval) int {
		if c := cmp.Compare(a.start, b.start); c != 0 {
			return c
		}
		switch {
		case a.point == b.point:
			return 0
		case a.point:
			return 1
		}
		return -1
	})
	out := ivs[:0]
	for _, iv := range ivs {
		if n := len(out); n > 0 && !out[n-1].point && !iv.assumed && iv.start <= out[n-1].end {
			if !iv.point || iv.start < out[n-1].end {
				out[n-1].end = max(out[n-1].end, iv.end)
				continue
			}
		}
		out = append(out, iv)
	}
	return out
}

// cost is the number of comparisons a bucket's read set takes.
func cost(ivs []interval) int {
	n := len(ivs)
	for _, iv := range ivs {
		if !iv.point {
			return n + 1 // the guard
		}
	}
	return n
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
