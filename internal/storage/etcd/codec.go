package etcd

import (
	"encoding/json"
	"fmt"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// Records are stored as JSON, in UTC (storage.Writes encodes them).

// decode decodes a stored record, bans through bd when it is not nil (a
// faster decoder whose results are encoding/json's, storage.BanDecoder).
func decode[T any](bd *storage.BanDecoder, kind, key string, data []byte) (T, error) {
	var v T
	return v, decodeInto(bd, kind, key, data, &v)
}

func decodeInto(bd *storage.BanDecoder, kind, key string, data []byte, v any) error {
	if err := bd.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: decode %s at %q: %w", errCorrupt, kind, key, err)
	}
	return nil
}

// storedChange is the value of the log key: the events of one Update, each
// encoded when it was emitted. The change's revision is the ModRevision of
// that version of the key, so it is not stored.
type storedChange struct {
	Events []json.RawMessage
}

// decodeChange decodes one version of the log key.
func decodeChange(rev int64, data []byte) (storage.Change, error) {
	var c storage.Change
	if err := json.Unmarshal(data, &c); err != nil {
		return storage.Change{}, fmt.Errorf("%w: change %d: %w", errCorrupt, rev, err)
	}
	c.Revision = rev
	return c, nil
}
