package bolt

import (
	"encoding/json"
	"sync"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// cachedChange is a committed change as the writer stored it. It is decoded
// at most once, by the first watcher that needs it, and the result is shared
// by every watcher: the writer never pays for decoding, and N watchers at
// the head cost one decode, not N reads of the file.
type cachedChange struct {
	rev int64
	raw []byte

	once   sync.Once
	change storage.Change
	err    error
}

func (c *cachedChange) decode() (storage.Change, error) {
	c.once.Do(func() {
		if err := json.Unmarshal(c.raw, &c.change); err != nil {
			c.err = decodeErr(c.rev, err)
		}
		c.raw = nil
	})
	return c.change, c.err
}

// changeCache is a ring of the most recent committed changes, contiguous in
// revision.
type changeCache struct {
	mu          sync.RWMutex
	ring        []*cachedChange
	first, last int64 // revisions held: first..last; empty when last < first
}

func newChangeCache(size int) *changeCache {
	return &changeCache{ring: make([]*cachedChange, size), first: 1}
}

// add appends changes committed together, in revision order.
func (c *changeCache) add(changes []*cachedChange) {
	n := int64(len(c.ring))
	if n == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range changes {
		if c.last < c.first || ch.rev != c.last+1 {
			c.first = ch.rev // empty, or not contiguous: start over
		}
		c.ring[ch.rev%n] = ch
		c.last = ch.rev
		if c.last-c.first >= n {
			c.first = c.last - n + 1
		}
	}
}

// after appends to dst up to max cached changes following rev, or none when
// the next one is not cached.
func (c *changeCache) after(rev int64, dst []*cachedChange, max int) []*cachedChange {
	n := int64(len(c.ring))
	if n == 0 {
		return dst
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if rev+1 < c.first || rev+1 > c.last {
		return dst
	}
	for r := rev + 1; r <= c.last && len(dst) < max; r++ {
		dst = append(dst, c.ring[r%n])
	}
	return dst
}
