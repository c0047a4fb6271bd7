package bolt

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
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

func utc(t *time.Time) { *t = t.UTC() }

func utcSession(s storage.Session) storage.Session {
	for _, t := range []*time.Time{&s.CreateTime, &s.ExpireTime, &s.RefreshTime, &s.AccessExpireTime, &s.RevokeTime} {
		utc(t)
	}
	return s
}

func utcRefreshToken(r storage.RefreshToken) storage.RefreshToken {
	utc(&r.ExpireTime)
	return r
}

func utcBan(b storage.Ban) storage.Ban {
	for _, t := range []*time.Time{&b.CreateTime, &b.ExpireTime, &b.LiftTime} {
		utc(t)
	}
	return b
}

func utcAudit(a storage.AuditRecord) storage.AuditRecord {
	utc(&a.Time)
	return a
}

func utcAPIKey(k storage.APIKey) storage.APIKey {
	for _, t := range []*time.Time{&k.CreateTime, &k.ExpireTime, &k.RevokeTime} {
		utc(t)
	}
	return k
}

func utcSigningKey(k storage.SigningKey) storage.SigningKey {
	for _, t := range []*time.Time{&k.CreateTime, &k.RetireTime, &k.VerifyUntil} {
		utc(t)
	}
	return k
}

// utcEvent copies the payload rather than writing through the caller's
// pointer.
func utcEvent(e storage.Event) storage.Event {
	utc(&e.Time)
	if e.Ban != nil {
		b := utcBan(*e.Ban)
		e.Ban = &b
	}
	if e.Session != nil {
		s := utcSession(*e.Session)
		e.Session = &s
	}
	if e.Key != nil {
		k := utcSigningKey(*e.Key)
		e.Key = &k
	}
	return e
}

// storedChange is the stored form of a storage.Change: the same JSON shape,
// with each event encoded when it was emitted.
type storedChange struct {
	Revision int64
	Events   []json.RawMessage
}
