package bolt

import (
	"encoding/json"
	"fmt"
)

// Records are stored as JSON. Times are converted to UTC before encoding so
// that every time read back has the UTC location and no monotonic reading,
// whatever the caller passed in (JSON keeps the offset, not the zone).

func encode(kind string, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("storage/bolt: encode %s: %w", kind, err)
	}
	return b, nil
}

func decode[T any](kind string, data []byte) (T, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("%w: decode %s: %w", errCorrupt, kind, err)
	}
	return v, nil
}

// storedChange is the stored form of a storage.Change: the same JSON shape,
// with each event encoded when it was emitted.
type storedChange struct {
	Revision int64
	Events   []json.RawMessage
}
