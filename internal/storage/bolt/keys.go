package bolt

import (
	"encoding/binary"
	"fmt"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// indexPrefix is storage.IndexPrefix as a bbolt key.
func indexPrefix(parts ...string) []byte { return []byte(storage.IndexPrefix(parts...)) }

// revKey encodes a revision as an events key; big-endian keeps bbolt's byte
// order equal to numeric order.
func revKey(rev int64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(rev))
}

// parseUint64 decodes an 8-byte big-endian value (a revision key or a meta
// counter).
func parseUint64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("storage/bolt: %d-byte counter, want 8", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// parseRev decodes a revision key or counter.
func parseRev(b []byte) (int64, error) {
	u, err := parseUint64(b)
	if err != nil {
		return 0, err
	}
	if u > 1<<63-1 {
		return 0, fmt.Errorf("storage/bolt: revision %d out of range", u)
	}
	return int64(u), nil
}
