package client

import (
	"math/rand/v2"
	"testing"
)

// TestFreezeStableOrder: freeze sorts each shard by hash and keeps the
// entries of one hash in the order they were added (several bans on one
// subject are found in that order).
func TestFreezeStableOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var p index[string, int]
	hashes := make([]uint64, 300) // few distinct hashes, in few shards of both halves: long runs of equal ones
	shards := []uint64{0, 1, nShards/2 - 1, nShards / 2, nShards - 1}
	for i := range hashes {
		hashes[i] = shards[r.IntN(len(shards))]<<(64-shardBits) | uint64(r.IntN(50))
	}
	const n = parallelFreeze + 20000 // frozen by two goroutines
	for seq := range n {
		p.add(hashes[r.IntN(len(hashes))], "k", seq)
	}
	p.freeze()
	total := 0
	for _, s := range p.shards {
		if s == nil {
			continue
		}
		total += len(s.ents)
		for j := 1; j < len(s.ents); j++ {
			a, b := s.ents[j-1], s.ents[j]
			if a.h > b.h || (a.h == b.h && a.v > b.v) {
				t.Fatalf("entries %d and %d out of order: %+v then %+v", j-1, j, a, b)
			}
		}
		if s.filter == nil {
			t.Fatal("a frozen shard without its filter")
		}
	}
	if total != n {
		t.Fatalf("%d entries after freeze, want %d", total, n)
	}
}
