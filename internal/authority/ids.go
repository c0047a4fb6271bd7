package authority

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"sync"
	"time"
)

// idEncoding keeps the byte order of IDs in their text: the alphabet is in
// ascending ASCII order, so time-prefixed IDs sort by creation time.
var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// idSource makes IDs monotonic within this process (like monotonic ULIDs):
// an ID made in the same millisecond as the previous one, or while the
// clock stands still or steps back, is the previous one plus one. Listings
// then come out in creation order, and new records are appended at the end
// of the store's B+trees instead of being scattered across them.
var idSource struct {
	mu   sync.Mutex
	last [16]byte
}

// newID returns prefix + 26 characters: 48 bits of milliseconds since the
// epoch, then 80 bits, random for the first ID of a millisecond.
func newID(prefix string, now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	rand.Read(b[6:]) // never fails (crypto/rand panics rather than return short)
	idSource.mu.Lock()
	if string(b[:6]) <= string(idSource.last[:6]) {
		b = idSource.last
		for i := 15; i >= 0; i-- { // +1, carrying
			b[i]++
			if b[i] != 0 {
				break
			}
		}
	}
	idSource.last = b
	idSource.mu.Unlock()
	return prefix + idEncoding.EncodeToString(b[:])
}

// newSecret returns prefix + 256 random bits, base64url.
func newSecret(prefix string) string {
	var b [32]byte
	rand.Read(b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// hashSecret is how refresh tokens and API keys are stored.
func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// idBefore is an ID that sorts before every ID newID(prefix, t') makes
// for t' at or after t, and after none of a record whose time is at or
// after t: newID's IDs start with their millisecond and are never behind
// it (when the clock goes back they continue from the last), so the
// largest ID of the millisecond before t's is such a bound.
func idBefore(prefix string, t time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli()-1)<<16|0xffff)
	for i := 8; i < 16; i++ {
		b[i] = 0xff
	}
	return prefix + idEncoding.EncodeToString(b[:])
}
