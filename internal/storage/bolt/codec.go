package bolt

import (
	"encoding/json"
	"fmt"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// Records are stored as JSON, in UTC (storage.Writes encodes them).

// decode decodes a stored record, bans through bd when it is not nil (a
// faster decoder whose results are encoding/json's, storage.BanDecoder).
func decode[T any](bd *storage.BanDecoder, kind string, data []byte) (T, error) {
	var v T
	return v, decodeInto(bd, kind, data, &v)
}

func decodeInto(bd *storage.BanDecoder, kind string, data []byte, v any) error {
	if err := bd.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: decode %s: %w", errCorrupt, kind, err)
	}
	return nil
}

// storedChange is the stored form of a storage.Change: the same JSON shape,
// with each event encoded when it was emitted.
type storedChange struct {
	Revision int64
	Events   []json.RawMessage
}
