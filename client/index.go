package client

import (
	"cmp"
	"hash/maphash"
	"math/bits"
	"slices"
	"sync"
)

// shardBits sizes an index: 1024 shards, so that 100k entries make shards
// of about 100 and an update copies one shard plus the 8 KB array of
// shard pointers, never the whole index (BenchmarkApplyChange).
const (
	shardBits = 10
	nShards   = 1 << shardBits
)

// index is an immutable multimap from K to V, the building block of the
// mirror's state. Readers call run on a published index with no
// synchronisation; writers derive a new index with update or filter
// (copy-on-write: the shard array and the shards touched), or, while
// building a state nobody reads yet, add in place and then freeze.
//
// Entries carry the 64-bit hash of their key, which the caller computes
// (a cached token carries the hashes of its user, device and session, so
// a check hashes nothing). A shard is a slice of entries sorted by hash,
// found by binary search, plus a small Bloom filter of the hashes (2 bits
// of 16 per entry): most lookups are of users, devices, sessions and
// prefixes that are not there, and the filter answers them with two bit
// tests. Sorted slices rather than Go maps because they hold a ban in
// place (no per-entry allocation, no empty slots), which takes less memory
// per ban than Go maps of pointers (BenchmarkMirrorMemory; BENCHMARKS.md,
// "Checks in a service").
type index[K comparable, V any] struct {
	shards *[nShards]*shard[K, V] // nil while empty
	n      int
}

type entry[K comparable, V any] struct {
	h uint64
	k K
	v V
}

type shard[K comparable, V any] struct {
	ents   []entry[K, V] // sorted by h; equal hashes in insertion order
	filter []uint64      // power-of-two words; nil: not built (always search)
}

func shardOf(h uint64) uint { return uint(h >> (64 - shardBits)) }

// filterBits returns the two filter bits of hash h for a filter of mask+1
// bits: low bits, where shardOf looks at the top ones.
func filterBits(h, mask uint64) (uint64, uint64) { return h & mask, (h >> 24) & mask }

// newShard returns a shard of ents (sorted), with its filter; nil when
// ents is empty.
func newShard[K comparable, V any](ents []entry[K, V]) *shard[K, V] {
	if len(ents) == 0 {
		return nil
	}
	words := 1
	if n := len(ents) * 16 / 64; n > 1 {
		words = 1 << bits.Len(uint(n-1))
	}
	s := &shard[K, V]{ents: ents, filter: make([]uint64, words)}
	mask := uint64(words)*64 - 1
	for i := range ents {
		b1, b2 := filterBits(ents[i].h, mask)
		s.filter[b1>>6] |= 1 << (b1 & 63)
		s.filter[b2>>6] |= 1 << (b2 & 63)
	}
	return s
}

func (p index[K, V]) len() int { return p.n }

// run returns the entries whose hash is h (callers compare keys: two keys
// may share a hash). It does not allocate.
func (p index[K, V]) run(h uint64) []entry[K, V] {
	if p.shards == nil {
		return nil
	}
	s := p.shards[shardOf(h)]
	if s == nil {
		return nil
	}
	if f := s.filter; f != nil {
		b1, b2 := filterBits(h, uint64(len(f))*64-1)
		if f[b1>>6]&(1<<(b1&63)) == 0 || f[b2>>6]&(1<<(b2&63)) == 0 {
			return nil
		}
	}
	lo, end := searchRun(s.ents, h)
	return s.ents[lo:end]
}

// searchRun returns the bounds of the entries of hash h in ents (sorted).
func searchRun[K comparable, V any](ents []entry[K, V], h uint64) (lo, end int) {
	hi := len(ents)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if ents[mid].h < h {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	end = lo
	for end < len(ents) && ents[end].h == h {
		end++
	}
	return lo, end
}

// get returns the value of the first entry with key k.
func (p index[K, V]) get(h uint64, k K) (V, bool) {
	run := p.run(h)
	for i := range run {
		if run[i].k == k {
			return run[i].v, true
		}
	}
	var zero V
	return zero, false
}

// add appends an entry in place. Only while building; freeze after.
func (p *index[K, V]) add(h uint64, k K, v V) {
	if p.shards == nil {
		p.shards = new([nShards]*shard[K, V])
	}
	i := shardOf(h)
	s := p.shards[i]
	if s == nil {
		s = &shard[K, V]{}
		p.shards[i] = s
	}
	s.ents = append(s.ents, entry[K, V]{h, k, v})
	s.filter = nil
	p.n++
}

// freeze sorts the shards built by add and builds their filters. A large
// index is frozen by two goroutines, half the shards each: freeze is what
// is left to do once a snapshot's last part has arrived, when the
// authority has finished sending and its core is free.
func (p *index[K, V]) freeze() {
	if p.shards == nil {
		return
	}
	if p.n < parallelFreeze {
		p.freezeShards(0, nShards)
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { p.freezeShards(0, nShards/2) })
	p.freezeShards(nShards/2, nShards)
	wg.Wait()
}

// parallelFreeze is the size from which freeze uses two goroutines: below
// it, one freezes in well under a millisecond.
const parallelFreeze = 1 << 16

// freezeShards freezes the shards [from, to).
func (p *index[K, V]) freezeShards(from, to int) {
	var order []hashAt
	for i := from; i < to; i++ {
		if s := p.shards[i]; s != nil && s.filter == nil {
			order = sortedOrder(s.ents, order)
			// An exact-size copy (add grew the slice by doubling), in order.
			ents := make([]entry[K, V], len(s.ents))
			for j, o := range order {
				ents[j] = s.ents[o.at]
			}
			p.shards[i] = newShard(ents)
		}
	}
}

// hashAt is an entry's hash and position, what freeze sorts.
type hashAt struct {
	h  uint64
	at uint32
}

// sortedOrder returns the positions of ents sorted by hash, equal hashes
// in insertion order, in buf's storage. An unstable sort of the (hash,
// position) pairs, which are distinct, is that stable order: it moves 16
// bytes an element rather than whole entries, and was 2-3 times faster
// than slices.SortStableFunc on the entries at a million bans
// (BENCHMARKS.md, "Cold start at 1,000,000 bans").
func sortedOrder[K comparable, V any](ents []entry[K, V], buf []hashAt) []hashAt {
	buf = buf[:0]
	for i := range ents {
		buf = append(buf, hashAt{ents[i].h, uint32(i)})
	}
	slices.SortFunc(buf, func(a, b hashAt) int {
		if c := cmp.Compare(a.h, b.h); c != 0 {
			return c
		}
		return cmp.Compare(a.at, b.at)
	})
	return buf
}

// update returns a copy of p in which the run of hash h is replaced by
// fn(run), or p itself when fn reports no change. run is shared with p:
// fn must not modify it (nor append to it); it returns entries of hash h.
func (p index[K, V]) update(h uint64, fn func(run []entry[K, V]) ([]entry[K, V], bool)) index[K, V] {
	i := shardOf(h)
	var old []entry[K, V]
	if p.shards != nil && p.shards[i] != nil {
		old = p.shards[i].ents
	}
	lo, end := searchRun(old, h)
	repl, changed := fn(old[lo:end:end])
	if !changed {
		return p
	}
	ents := make([]entry[K, V], 0, len(old)-(end-lo)+len(repl))
	ents = append(ents, old[:lo]...)
	ents = append(ents, repl...)
	ents = append(ents, old[end:]...)
	out := index[K, V]{shards: new([nShards]*shard[K, V]), n: p.n - (end - lo) + len(repl)}
	if out.n == 0 {
		return index[K, V]{}
	}
	if p.shards != nil {
		*out.shards = *p.shards
	}
	out.shards[i] = newShard(ents)
	return out
}

// filter returns p without the entries keep rejects (p itself when it
// rejects none) and how many it dropped. Only the shards that change are
// copied.
func (p index[K, V]) filter(keep func(*entry[K, V]) bool) (index[K, V], int) {
	if p.shards == nil {
		return p, 0
	}
	var out *[nShards]*shard[K, V]
	dropped := 0
	for i, s := range p.shards {
		if s == nil {
			continue
		}
		var ents []entry[K, V]
		for j := range s.ents {
			if keep(&s.ents[j]) {
				if ents != nil {
					ents = append(ents, s.ents[j])
				}
				continue
			}
			if ents == nil {
				ents = make([]entry[K, V], j, len(s.ents)-1)
				copy(ents, s.ents[:j])
			}
			dropped++
		}
		if ents == nil {
			continue
		}
		if out == nil {
			out = new([nShards]*shard[K, V])
			*out = *p.shards
		}
		out[i] = newShard(ents)
	}
	if out == nil {
		return p, 0
	}
	if p.n == dropped {
		return index[K, V]{}, dropped
	}
	return index[K, V]{shards: out, n: p.n - dropped}, dropped
}

// all calls fn for every entry.
func (p index[K, V]) all(fn func(*entry[K, V])) {
	if p.shards == nil {
		return
	}
	for _, s := range p.shards {
		if s != nil {
			for i := range s.ents {
				fn(&s.ents[i])
			}
		}
	}
}

// seed keys every string hash of the process: the state's indexes and the
// hashes cached with verified tokens must agree.
var seed = maphash.MakeSeed()

func strHash(s string) uint64 { return maphash.String(seed, s) }

// mix spreads an integer key's bits over the whole word: shardOf and the
// filter look at different ones.
func mix(x uint64) uint64 {
	hi, lo := bits.Mul64(x^0x9e3779b97f4a7c15, 0xbf58476d1ce4e5b9)
	return hi ^ lo
}
