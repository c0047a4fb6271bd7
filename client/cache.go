package client

import (
	"hash/maphash"
	"math/bits"
	"math/rand/v2"
	"sync/atomic"
)

// cache remembers verified tokens so that a repeated token costs a hash
// and a string comparison, not a signature verification. It holds claims
// only: bans, revocations and expiry are looked up on every check, so a
// ban that arrives applies to cached tokens at once.
//
// It is a set-associative table of atomic pointers to immutable entries:
// a token hashes to a set of `ways` slots; a lookup loads at most that
// many pointers, an insert stores one. No lock, no allocation on a hit,
// and the size is bounded by construction (at most CacheSize entries).
// When a set is full, the insert replaces an empty or expired slot, or
// else a random one: no bookkeeping on hits (LRU would write on every
// check), at the price of sometimes evicting a busy token, which then
// costs one more verification. Only verified tokens are inserted, so
// invalid tokens cannot flush the cache.
type cache struct {
	sets  uint64
	slots []atomic.Pointer[verified]
}

const ways = 4

// verified is one verified token. It is never modified after it is stored.
type verified struct {
	token string // the whole token, compared on every hit: rules out a hash collision
	hash  uint64
	sess  Session
	exp   int64 // the token's exp, unix ns

	// keyUntil is when the signing key stops verifying (0: never); keyGen
	// the state's key generation at verification. Either makes a hit
	// verify again.
	keyUntil int64
	keyGen   uint64

	// Hashes of the user, device and session IDs, with the state's seed:
	// the lookups of a hit need not hash them again.
	userH, deviceH, sessionH uint64
	// revKey is an external token's revocation key (external.go); "" for
	// the authority's tokens, whose key is their session ID.
	revKey string
	// tokKey is the key of an external token's revocation by jti, tokH its
	// hash; "" without a jti.
	tokKey string
	tokH   uint64
}

// newCache returns a cache of at most size entries, or nil (no caching)
// when size < ways.
func newCache(size int) *cache {
	if size < ways {
		return nil
	}
	sets := uint64(size / ways)
	return &cache{sets: sets, slots: make([]atomic.Pointer[verified], sets*ways)}
}

// tokenHash hashes the last 32 characters of a token: its signature,
// which differs between any two tokens, so that the cost of hashing does
// not grow with the token's claims; the entry's full comparison makes the
// shortcut safe (a crafted token with a copied tail is simply not found).
func tokenHash(tok string) uint64 {
	if len(tok) > 32 {
		tok = tok[len(tok)-32:]
	}
	return maphash.String(seed, tok)
}

func (c *cache) set(h uint64) []atomic.Pointer[verified] {
	i, _ := bits.Mul64(h, c.sets) // h scaled to [0, sets): no modulo
	return c.slots[i*ways : i*ways+ways]
}

// get returns the entry of tok, or nil.
func (c *cache) get(tok string, h uint64) *verified {
	if c == nil {
		return nil
	}
	set := c.set(h)
	for i := range set {
		if e := set[i].Load(); e != nil && e.hash == h && e.token == tok {
			return e
		}
	}
	return nil
}

// put stores e, replacing a slot of its set.
func (c *cache) put(e *verified, now int64) {
	if c == nil {
		return
	}
	set := c.set(e.hash)
	victim := -1
	for i := range set {
		old := set[i].Load()
		if old == nil || now >= old.exp || (old.hash == e.hash && old.token == e.token) {
			victim = i
			break
		}
	}
	if victim < 0 {
		victim = int(rand.Uint32N(ways))
	}
	set[victim].Store(e)
}

// len counts the entries (for Stats; it walks the table).
func (c *cache) len() int {
	if c == nil {
		return 0
	}
	n := 0
	for i := range c.slots {
		if c.slots[i].Load() != nil {
			n++
		}
	}
	return n
}
