package etcd

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sort"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// errTxDone is returned by a transaction (or an iterator) used after the
// View or Update function that received it returned.
var errTxDone = errors.New("storage/etcd: transaction used after its function returned")

// errReadOnly is returned by a write through a View's transaction.
var errReadOnly = errors.New("storage/etcd: write in a read-only transaction")

// errSnapshotCompacted is returned by a read whose revision etcd compacted
// while the function ran; Update runs the function again on a fresh one.
var errSnapshotCompacted = errors.New("storage/etcd: the transaction's snapshot was compacted by etcd")

const (
	// scanPage is how many keys an iterator reads per request.
	scanPage = 256
	// prefetchLimit bounds the index range a transaction reads in one
	// request to answer many narrow queries from memory (see Bans).
	prefetchLimit = 1024
)

// kv is one key as the transaction sees it.
type kv struct {
	key    string
	val    []byte
	modRev int64 // 0: absent (or written by this transaction)
	exists bool
}

// pending is a write buffered until commit.
type pending struct {
	val []byte
	del bool
}

// pointRead is a key the function read, with what it saw.
type pointRead struct {
	bucket string
	modRev int64 // 0: absent
	// assumed: not read but assumed absent (a new record's key); the
	// comparison must stay exact, never merged into a range.
	assumed bool
}

// rangeRead is a key range the function iterated over, [start, end).
type rangeRead struct {
	bucket     string
	start, end string
}

// cachedRange is a complete key range read at the transaction's revision.
type cachedRange struct {
	start, end string
	kvs        []kv // sorted by key
}

// txn is the storage.ReadTx of View and the storage.Tx of Update. Reads are
// made at one etcd revision (the one of the first read), so the function
// sees one snapshot; writes are buffered, and reads and iterators see them.
// For Update it records what the function read, which commit turns into the
// comparisons of one etcd transaction.
type txn struct {
	s        *Store
	k        keyspace
	ctx      context.Context
	writable bool
	done     bool
	// linearizable makes the first read linearizable. An Update's first
	// attempt reads serializably: its commit (or, when it writes nothing or
	// fails, a read-only transaction with the same comparisons) proves that
	// what it read still holds, so a stale snapshot costs a retry, never a
	// wrong result.
	linearizable bool
	// assume lets writes of records not read yet assume they are new
	// instead of reading them (see getForWrite).
	assume bool

	rev int64 // the etcd revision reads are made at; 0 before the first

	logRev   int64 // ModRevision of the log key at rev
	logKnown bool

	cache      map[string]kv // point reads
	ranges     []*cachedRange
	prefetched map[string]bool

	points   map[string]pointRead
	observed []rangeRead

	writes map[string]pending
	guards map[string]bool

	storage.Writes // the write methods, and the events emitted

	// stale: a read found rev compacted; the function must run again.
	stale bool
	// sticky is an error from a read that could not return one
	// (Revision); the transaction fails with it.
	sticky error
}

func newTxn(s *Store, ctx context.Context, writable bool) *txn {
	t := &txn{s: s, k: s.k, ctx: ctx, writable: writable, linearizable: true, cache: map[string]kv{}, prefetched: map[string]bool{}}
	t.Writes = storage.NewWrites(t)
	if writable {
		t.points = map[string]pointRead{}
		t.writes = map[string]pending{}
		t.guards = map[string]bool{}
	}
	return t
}

var (
	_ storage.ReadTx = (*txn)(nil)
	_ storage.Tx     = (*txn)(nil)
)

func (t *txn) usable() error {
	switch {
	case t.done:
		return errTxDone
	case t.sticky != nil:
		return t.sticky
	}
	return nil
}

// rangeGet reads [key, end) (just key when end is "") at the transaction's
// revision, establishing it with a linearizable read on the first call.
// Later reads are serializable: the revision is committed, so any member
// that has applied it answers the same; one that has not says so, and the
// read is repeated linearizably.
func (t *txn) rangeGet(key, end string, limit int64) ([]kv, bool, error) {
	opts := make([]clientv3.OpOption, 0, 4)
	if end != "" {
		opts = append(opts, clientv3.WithRange(end))
	}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(limit))
	}
	var resp *clientv3.GetResponse
	var err error
	if t.rev == 0 {
		if !t.linearizable {
			opts = append(opts, clientv3.WithSerializable())
		}
		resp, err = t.s.cli.Get(t.ctx, key, opts...)
	} else {
		opts = append(opts, clientv3.WithRev(t.rev))
		resp, err = t.s.cli.Get(t.ctx, key, append(opts, clientv3.WithSerializable())...)
		if errors.Is(err, rpctypes.ErrFutureRev) {
			resp, err = t.s.cli.Get(t.ctx, key, opts...)
		}
	}
	if errors.Is(err, rpctypes.ErrCompacted) {
		t.stale = true
		return nil, false, fmt.Errorf("%w (revision %d)", errSnapshotCompacted, t.rev)
	}
	if err != nil {
		return nil, false, t.s.mapErr("read", err)
	}
	if t.rev == 0 {
		t.rev = resp.Header.Revision
	}
	out := make([]kv, len(resp.Kvs))
	for i, e := range resp.Kvs {
		out[i] = kv{key: string(e.Key), val: e.Value, modRev: e.ModRevision, exists: true}
	}
	return out, resp.More, nil
}

// cachedRangeFor returns a complete cached range that covers [start, end).
func (t *txn) cachedRangeFor(start, end string) *cachedRange {
	for _, c := range t.ranges {
		if c.start <= start && end <= c.end {
			return c
		}
	}
	return nil
}

// prefetch reads [start, end) in one request and keeps it for later reads
// when it holds at most prefetchLimit keys. Reads served from it are
// recorded exactly as if they had gone to etcd.
func (t *txn) prefetch(start, end string) error {
	if t.prefetched[start+"\xff"+end] || t.cachedRangeFor(start, end) != nil {
		return nil
	}
	t.prefetched[start+"\xff"+end] = true
	kvs, more, err := t.rangeGet(start, end, prefetchLimit)
	if err != nil || more {
		return err
	}
	t.ranges = append(t.ranges, &cachedRange{start: start, end: end, kvs: kvs})
	return nil
}

// get reads one key: the transaction's own write, else the snapshot.
func (t *txn) get(bucket, key string) ([]byte, bool, error) {
	if err := t.usable(); err != nil {
		return nil, false, err
	}
	if t.writable {
		if w, ok := t.writes[key]; ok {
			return w.val, !w.del, nil
		}
	}
	e, ok := t.cache[key]
	if !ok {
		e = kv{key: key}
		if c := t.cachedRangeFor(key, key+"\x00"); c != nil {
			for _, x := range c.kvs {
				if x.key == key {
					e = x
					break
				}
			}
		} else {
			kvs, _, err := t.rangeGet(key, "", 0)
			if err != nil {
				return nil, false, err
			}
			if len(kvs) == 1 {
				e = kvs[0]
			}
		}
		t.cache[key] = e
	}
	if t.writable {
		if _, seen := t.points[key]; !seen {
			t.points[key] = pointRead{bucket: bucket, modRev: e.modRev}
		}
	}
	return e.val, e.exists, nil
}

// getForWrite reads the current record under key before a write replaces
// it (for its index entries, or to refuse a duplicate). On an Update's
// first attempt a key not read yet is assumed absent, without a request:
// new records have fresh IDs, so the assumption nearly always holds, and
// it is an exact comparison of the commit (ModRevision 0). When it does
// not hold the commit fails and the function runs again, reading.
func (t *txn) getForWrite(bucket, key string) ([]byte, bool, error) {
	if err := t.usable(); err != nil {
		return nil, false, err
	}
	if _, written := t.writes[key]; !written && t.assume {
		_, cached := t.cache[key]
		if _, read := t.points[key]; !cached && !read && t.cachedRangeFor(key, key+"\x00") == nil {
			t.points[key] = pointRead{bucket: bucket, assumed: true}
			return nil, false, nil
		}
	}
	return t.get(bucket, key)
}

// readAny reports whether the function read anything.
func (t *txn) readAny() bool { return t.rev != 0 || len(t.points) > 0 }

// nextWrite returns the smallest key this transaction wrote in [from, end).
func (t *txn) nextWrite(from, end string) (string, pending, bool) {
	var best string
	var bw pending
	found := false
	for k, w := range t.writes {
		if k >= from && k < end && (!found || k < best) {
			best, bw, found = k, w, true
		}
	}
	return best, bw, found
}

// scan yields the keys in [start, end) in order: the snapshot merged with
// this transaction's writes. The consumer may write while it iterates
// (each step looks for the next key after the last one yielded). In an
// Update, the part of the range it went through is recorded.
func (t *txn) scan(bucket, start, end string, onPage func([]kv) error) iter.Seq2[kv, error] {
	return func(yield func(kv, error) bool) {
		if err := t.usable(); err != nil {
			yield(kv{}, err)
			return
		}
		cursor := start
		exhausted := false
		if t.writable {
			defer func() {
				upTo := cursor
				if exhausted {
					upTo = end
				}
				if upTo > start {
					t.observed = append(t.observed, rangeRead{bucket: bucket, start: start, end: upTo})
				}
			}()
		}
		cached := t.cachedRangeFor(start, end)
		var buf []kv
		pos := 0
		fetched, more := false, false
		for {
			var snap *kv
			for {
				for pos < len(buf) && buf[pos].key < cursor {
					pos++
				}
				if pos < len(buf) {
					if buf[pos].key < end {
						snap = &buf[pos]
					}
					break
				}
				if fetched && !more {
					break
				}
				fetched, pos = true, 0
				if cached != nil {
					buf, more = cached.kvs, false
				} else {
					var err error
					if buf, more, err = t.rangeGet(cursor, end, scanPage); err != nil {
						yield(kv{}, err)
						return
					}
				}
				if onPage != nil {
					if err := onPage(pageIn(buf, cursor, end)); err != nil {
						yield(kv{}, err)
						return
					}
				}
			}
			var out kv
			wk, w, hasW := "", pending{}, false
			if t.writable {
				wk, w, hasW = t.nextWrite(cursor, end)
			}
			switch {
			case hasW && (snap == nil || wk <= snap.key):
				cursor = wk + "\x00"
				if w.del {
					continue
				}
				out = kv{key: wk, val: w.val, exists: true}
			case snap != nil:
				out = *snap
				cursor = snap.key + "\x00"
			default:
				exhausted = true
				return
			}
			if !yield(out, nil) {
				return
			}
			if err := t.usable(); err != nil {
				yield(kv{}, err)
				return
			}
		}
	}
}

// pageIn returns the part of a sorted page within [from, end).
func pageIn(buf []kv, from, end string) []kv {
	i := sort.Search(len(buf), func(i int) bool { return buf[i].key >= from })
	j := sort.Search(len(buf), func(i int) bool { return buf[i].key >= end })
	if i > j {
		return nil
	}
	return buf[i:j]
}

// preloadBatch is how many keys preload reads per request.
const preloadBatch = 64

// preload reads the given keys at the transaction's revision into the
// cache, many per request: an index scan calls it with the records its
// next page names, instead of reading them one request each. It records
// nothing: the reads that follow (from the cache) do.
func (t *txn) preload(keys []string) error {
	var need []string
	for _, k := range keys {
		if _, ok := t.cache[k]; ok {
			continue
		}
		if t.writable {
			if _, ok := t.writes[k]; ok {
				continue
			}
		}
		need = append(need, k)
	}
	for len(need) > 0 && t.rev != 0 {
		batch := need[:min(len(need), preloadBatch, t.s.opts.MaxTxnOps)]
		need = need[len(batch):]
		resp, err := t.getMany(batch, true)
		if errors.Is(err, rpctypes.ErrFutureRev) {
			resp, err = t.getMany(batch, false)
		}
		if errors.Is(err, rpctypes.ErrCompacted) {
			t.stale = true
			return fmt.Errorf("%w (revision %d)", errSnapshotCompacted, t.rev)
		}
		if err != nil {
			return t.s.mapErr("read", err)
		}
		for i, k := range batch {
			e := kv{key: k}
			if kvs := resp.Responses[i].GetResponseRange().GetKvs(); len(kvs) == 1 {
				e = kv{key: k, val: kvs[0].Value, modRev: kvs[0].ModRevision, exists: true}
			}
			t.cache[k] = e
		}
	}
	return nil
}

// getMany reads keys at the transaction's revision in one read-only etcd
// transaction (served by the member itself when serializable).
func (t *txn) getMany(keys []string, serializable bool) (*clientv3.TxnResponse, error) {
	ops := make([]clientv3.Op, len(keys))
	for i, k := range keys {
		if serializable {
			ops[i] = clientv3.OpGet(k, clientv3.WithRev(t.rev), clientv3.WithSerializable())
		} else {
			ops[i] = clientv3.OpGet(k, clientv3.WithRev(t.rev))
		}
	}
	return t.s.cli.Txn(t.ctx).Then(ops...).Commit()
}

// scanRecords yields the records of a primary bucket in ID order, with an
// ID greater than after, that match.
func scanRecords[T any](t *txn, bucket, kind, after string, match func(*T) bool) iter.Seq2[T, error] {
	prefix := t.k.bucket(bucket)
	return func(yield func(T, error) bool) {
		var zero T
		var bd storage.BanDecoder // for T = storage.Ban
		for e, err := range t.scan(bucket, startAfter(prefix, after), prefixEnd(prefix), nil) {
			if err != nil {
				yield(zero, err)
				return
			}
			rec, err := decode[T](&bd, kind, e.key, e.val)
			if err != nil {
				yield(zero, err)
				return
			}
			if match(&rec) && !yield(rec, nil) {
				return
			}
		}
	}
}

// scanIndex yields the records named by the index entries under prefix, in
// ID order, with an ID greater than after, that match.
func scanIndex[T any](t *txn, index, prefix, primary, kind, after string, match func(*T) bool) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		var bd storage.BanDecoder // for T = storage.Ban
		// The records the current index page names are read a batch at a
		// time, from the one needed next, instead of one request each.
		var page []kv
		onPage := func(p []kv) error { page = p; return nil }
		for e, err := range t.scan(index, startAfter(prefix, after), prefixEnd(prefix), onPage) {
			if err != nil {
				yield(zero, err)
				return
			}
			id := e.key[len(prefix):]
			key := t.k.record(primary, id)
			if _, cached := t.cache[key]; !cached {
				i := sort.Search(len(page), func(i int) bool { return page[i].key >= e.key })
				if next := page[i:min(len(page), i+preloadBatch)]; len(next) > 1 {
					keys := make([]string, len(next))
					for j, x := range next {
						keys[j] = t.k.record(primary, x.key[len(prefix):])
					}
					if err := t.preload(keys); err != nil {
						yield(zero, err)
						return
					}
				}
			}
			raw, ok, err := t.get(primary, key)
			if err != nil {
				yield(zero, err)
				return
			}
			if !ok {
				yield(zero, fmt.Errorf("%w: index %s names %s %q, which does not exist", errCorrupt, index, kind, id))
				return
			}
			rec, err := decode[T](&bd, kind, id, raw)
			if err != nil {
				yield(zero, err)
				return
			}
			if match(&rec) && !yield(rec, nil) {
				return
			}
		}
	}
}

// startAfter is the first key under prefix whose ID is greater than after.
func startAfter(prefix, after string) string {
	if after == "" {
		return prefix
	}
	return prefix + after + "\x00"
}

// Revision is the ModRevision of the log key at the snapshot's revision:
// the revision of the last change the snapshot includes. Inside an Update
// it is not part of what the commit checks.
func (t *txn) Revision() int64 {
	if t.logKnown || t.usable() != nil {
		return t.logRev
	}
	kvs, _, err := t.rangeGet(t.k.log, "", 0)
	if err != nil {
		t.sticky = err
		return 0
	}
	t.logKnown = true
	if len(kvs) == 1 {
		t.logRev = kvs[0].modRev
	}
	return t.logRev
}

func (t *txn) Session(id string) (storage.Session, error) {
	return storage.Get[storage.Session](t, storage.TableSessions, id)
}

func (t *txn) Sessions(q storage.SessionQuery) iter.Seq2[storage.Session, error] {
	match := q.Matches
	switch {
	case q.TenantID != "" && q.UserID != "":
		return scanIndex(t, bucketSessionsByUser, t.k.indexPrefix(bucketSessionsByUser, q.TenantID, q.UserID), bucketSessions, "session", q.After, match)
	case q.TenantID != "" && q.DeviceID != "":
		return scanIndex(t, bucketSessionsByDevice, t.k.indexPrefix(bucketSessionsByDevice, q.TenantID, q.DeviceID), bucketSessions, "session", q.After, match)
	case q.TenantID != "":
		return scanIndex(t, bucketSessionsByTenant, t.k.indexPrefix(bucketSessionsByTenant, q.TenantID), bucketSessions, "session", q.After, match)
	}
	return scanRecords(t, bucketSessions, "session", q.After, match)
}

func (t *txn) RefreshToken(hash []byte) (storage.RefreshToken, error) {
	return storage.Get[storage.RefreshToken](t, storage.TableRefreshTokens, string(hash))
}

func (t *txn) RefreshTokens(sessionID string) iter.Seq2[storage.RefreshToken, error] {
	if sessionID == "" {
		return func(func(storage.RefreshToken, error) bool) {} // no token has an empty session ID
	}
	prefix := t.k.indexPrefix(bucketRefreshBySession, sessionID)
	return scanIndex(t, bucketRefreshBySession, prefix, bucketRefreshTokens, "refresh token", "", func(*storage.RefreshToken) bool { return true })
}

func (t *txn) Ban(id string) (storage.Ban, error) {
	return storage.Get[storage.Ban](t, storage.TableBans, id)
}

func (t *txn) Bans(q storage.BanQuery) iter.Seq2[storage.Ban, error] {
	match := q.Matches
	switch {
	case q.TenantID != "" && q.Kind != "" && q.Value != "":
		if q.Kind == storage.SubjectIP {
			// A check asks for every prefix containing an address, up to 128
			// queries per tenant: read the tenant's IP bans once (when there
			// are not too many) and answer them from memory.
			parent := t.k.indexPrefix(bucketBansBySubject, q.TenantID, string(q.Kind))
			if err := t.prefetch(parent, prefixEnd(parent)); err != nil {
				return func(yield func(storage.Ban, error) bool) { yield(storage.Ban{}, err) }
			}
		}
		return scanIndex(t, bucketBansBySubject, t.k.indexPrefix(bucketBansBySubject, q.TenantID, string(q.Kind), q.Value), bucketBans, "ban", q.After, match)
	case q.TenantID != "":
		return scanIndex(t, bucketBansByTenant, t.k.indexPrefix(bucketBansByTenant, q.TenantID), bucketBans, "ban", q.After, match)
	}
	return scanRecords(t, bucketBans, "ban", q.After, match)
}

func (t *txn) AuditRecords(q storage.AuditQuery) iter.Seq2[storage.AuditRecord, error] {
	match := q.Matches
	switch {
	case q.Subject != "":
		return scanIndex(t, bucketAuditBySubject, t.k.indexPrefix(bucketAuditBySubject, q.Subject), bucketAudit, "audit record", q.After, match)
	case q.Actor != "":
		return scanIndex(t, bucketAuditByActor, t.k.indexPrefix(bucketAuditByActor, q.Actor), bucketAudit, "audit record", q.After, match)
	}
	return scanRecords(t, bucketAudit, "audit record", q.After, match)
}

func (t *txn) APIKey(id string) (storage.APIKey, error) {
	return storage.Get[storage.APIKey](t, storage.TableAPIKeys, id)
}

func (t *txn) APIKeys() iter.Seq2[storage.APIKey, error] {
	return scanRecords(t, bucketAPIKeys, "api key", "", func(*storage.APIKey) bool { return true })
}

func (t *txn) SigningKeys() iter.Seq2[storage.SigningKey, error] {
	return scanRecords(t, bucketSigningKeys, "signing key", "", func(*storage.SigningKey) bool { return true })
}
