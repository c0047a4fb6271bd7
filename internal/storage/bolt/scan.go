package bolt

import (
	"bytes"
	"fmt"
	"iter"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// scanSpec says where an iterator reads: either the primary bucket itself
// (index nil), or the entries of index under prefix, whose key tails are IDs
// in the primary bucket. Both are ordered by ID within the prefix, which is
// what makes "ascending ID order, strictly after After" a cursor seek.
type scanSpec struct {
	primary []byte
	index   []byte // nil: scan primary
	prefix  []byte // index prefix; nil with primary
	kind    string // for error messages
	after   string
}

// scan yields the records selected by sc that match, in ascending ID order.
// It stops at the first error (yielded) or when yield returns false.
func scan[T any](t *readTx, sc scanSpec, match func(*T) bool) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		if err := t.usable(); err != nil {
			yield(zero, err)
			return
		}
		pb, err := t.bucket(sc.primary)
		if err != nil {
			yield(zero, err)
			return
		}
		cb := pb
		if sc.index != nil {
			if cb, err = t.bucket(sc.index); err != nil {
				yield(zero, err)
				return
			}
		}
		var bd storage.BanDecoder // for T = storage.Ban
		start := append(bytes.Clone(sc.prefix), sc.after...)
		c := cb.Cursor()
		k, v := c.Seek(start)
		if sc.after != "" && bytes.Equal(k, start) {
			k, v = c.Next()
		}
		for k != nil && bytes.HasPrefix(k, sc.prefix) {
			if sc.index != nil {
				id := k[len(sc.prefix):]
				if v = pb.Get(id); v == nil {
					yield(zero, fmt.Errorf("%w: index %s names %s %q, which does not exist", errCorrupt, sc.index, sc.kind, id))
					return
				}
			}
			rec, err := decode[T](&bd, sc.kind, v)
			if err != nil {
				yield(zero, err)
				return
			}
			if !match(&rec) {
				k, v = c.Next()
				continue
			}
			if !t.writable {
				if !yield(rec, nil) {
					return
				}
				k, v = c.Next()
				continue
			}
			// The consumer may write while we are suspended in yield, which
			// invalidates bbolt cursors: remember the key and seek back.
			last := bytes.Clone(k)
			if !yield(rec, nil) {
				return
			}
			if err := t.usable(); err != nil {
				yield(zero, err)
				return
			}
			if k, v = c.Seek(last); bytes.Equal(k, last) {
				k, v = c.Next()
			}
		}
	}
}
