package client

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
)

// checkResult is how a Check ended, for metrics (MirrorStats.Checks).
type checkResult int

// The results of Check.
const (
	checkAllowed        checkResult = iota // the token is valid and nothing refuses it
	checkStale                             // ErrMirrorStale (not synced, or stale and not fail-open)
	checkTokenInvalid                      // ErrTokenInvalid
	checkTokenExpired                      // ErrTokenExpired
	checkBanned                            // a full ban: ErrUserBanned, ErrDeviceBanned, ErrIPBanned
	checkSessionRevoked                    // ErrSessionRevoked
	checkRestricted                        // ErrCapabilityRestricted
	numCheckResults
)

var checkResultNames = [numCheckResults]string{
	"allowed", "stale", "token_invalid", "token_expired", "banned", "session_revoked", "capability_restricted",
}

// checkCounters counts checks without writing anything that the checks
// of other cores write: each P (a goroutine's processor, about a core)
// counts in a shard of its own, and a read sums the shards. Sharding by
// the token's hash, as before, made every check of one hot token (a busy
// service account, a load test) write one cache line from every core:
// two goroutines checking one token did fewer checks than one
// (BenchmarkCheckHotToken, BENCHMARKS.md).
//
// A check finds its P's shard through a stripe, a token held in a
// sync.Pool: Get and Put of a pool use the current P's private slot, with
// no lock and no write that another P sees, and a P gets its stripe back
// check after check (after a GC too: the pool's victim cache keeps it). A
// stripe is an index, handed out in turn when the pool has none at hand
// (at start, or once two GCs dropped an idle P's): the first ones go to
// different shards. Whatever shard a check lands on, the count is right:
// the adds are atomic, and load sums them all.
type checkCounters struct {
	shards atomic.Pointer[[]checkShard] // nil until the first check
}

// checkShard is one P's counters, alone on its cache lines: 128 bytes
// apart, two shards never share a 64-byte line, nor a pair of lines that
// the adjacent-line prefetcher fetches together. (The slice's array is at
// least 512 bytes, a power-of-two size class, so it starts aligned.)
type checkShard struct {
	n [numCheckResults]atomic.Uint64
	_ [128 - numCheckResults*8]byte
}

// stripe picks a shard: shards[i & (len(shards)-1)].
type stripe struct{ i uint32 }

var (
	nextStripe atomic.Uint32
	stripes    = sync.Pool{New: func() any { return &stripe{i: nextStripe.Add(1) - 1} }}
)

// numCheckShards is a power of two, twice the CPUs (at least 4, at most
// 256): stripes handed out in turn after the first ones rarely land on a
// shard a running P uses.
func numCheckShards() int {
	n := 4
	for n < 2*runtime.NumCPU() && n < 256 {
		n *= 2
	}
	return n
}

func (c *checkCounters) add(r checkResult) {
	p := c.shards.Load()
	if p == nil {
		p = c.alloc()
	}
	shards := *p
	s := stripes.Get().(*stripe)
	shards[s.i&uint32(len(shards)-1)].n[r].Add(1)
	stripes.Put(s)
}

// alloc allocates the shards, once: the first check that finds none
// installs its own, the others use it.
func (c *checkCounters) alloc() *[]checkShard {
	shards := make([]checkShard, numCheckShards())
	if c.shards.CompareAndSwap(nil, &shards) {
		return &shards
	}
	return c.shards.Load()
}

// load sums the shards into MirrorStats.Checks: every result, by its
// label, zero included, so that a metric exists before its first check.
func (c *checkCounters) load() map[string]uint64 {
	var sum [numCheckResults]uint64
	if p := c.shards.Load(); p != nil {
		for i := range *p {
			for r := range sum {
				sum[r] += (*p)[i].n[r].Load()
			}
		}
	}
	out := make(map[string]uint64, numCheckResults)
	for r, n := range sum {
		out[checkResultNames[r]] = n
	}
	return out
}

// resultOf classifies the error of a Check. The allowed case is kept
// apart so that it stays free of allocation (errors.As makes its target
// escape).
func resultOf(err error) checkResult {
	if err == nil {
		return checkAllowed
	}
	return refusalOf(err)
}

func refusalOf(err error) checkResult {
	var be *BanError
	switch {
	case errors.As(err, &be):
		if be.Reason == reasonCap {
			return checkRestricted
		}
		return checkBanned
	case errors.Is(err, ErrSessionRevoked):
		return checkSessionRevoked
	case errors.Is(err, ErrTokenExpired):
		return checkTokenExpired
	case errors.Is(err, ErrMirrorStale):
		return checkStale
	default:
		return checkTokenInvalid
	}
}
