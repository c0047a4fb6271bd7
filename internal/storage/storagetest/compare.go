package storagetest

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// Records are compared after normalising what an encoding may legitimately
// change: the location of a time (compared as an instant; the exact UTC
// round trip has its own test) and nil versus empty slices and maps.

func normTime(t *time.Time) { *t = t.UTC() }

func normBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func normStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func normMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

func normSession(s storage.Session) storage.Session {
	for _, t := range []*time.Time{&s.CreateTime, &s.ExpireTime, &s.RefreshTime, &s.AccessExpireTime, &s.RevokeTime} {
		normTime(t)
	}
	s.Attributes = normMap(s.Attributes)
	return s
}

func normRefreshToken(r storage.RefreshToken) storage.RefreshToken {
	normTime(&r.ExpireTime)
	r.Hash = normBytes(r.Hash)
	return r
}

func normBan(b storage.Ban) storage.Ban {
	for _, t := range []*time.Time{&b.CreateTime, &b.ExpireTime, &b.LiftTime, &b.ExpiryAnnounced} {
		normTime(t)
	}
	b.Capabilities = normStrings(b.Capabilities)
	return b
}

func normAudit(a storage.AuditRecord) storage.AuditRecord {
	normTime(&a.Time)
	a.Details = normMap(a.Details)
	return a
}

func normAPIKey(k storage.APIKey) storage.APIKey {
	for _, t := range []*time.Time{&k.CreateTime, &k.ExpireTime, &k.RevokeTime} {
		normTime(t)
	}
	k.SecretHash = normBytes(k.SecretHash)
	k.Scopes = normStrings(k.Scopes)
	return k
}

func normSigningKey(k storage.SigningKey) storage.SigningKey {
	for _, t := range []*time.Time{&k.CreateTime, &k.RetireTime, &k.VerifyUntil} {
		normTime(t)
	}
	k.PrivateKey = normBytes(k.PrivateKey)
	k.PublicKey = normBytes(k.PublicKey)
	return k
}

func normEvent(e storage.Event) storage.Event {
	normTime(&e.Time)
	if e.Ban != nil {
		b := normBan(*e.Ban)
		e.Ban = &b
	}
	if e.Session != nil {
		s := normSession(*e.Session)
		e.Session = &s
	}
	if e.Key != nil {
		k := normSigningKey(*e.Key)
		e.Key = &k
	}
	if e.Issuer != nil {
		i := normIssuer(*e.Issuer)
		e.Issuer = &i
	}
	if e.Revocation != nil {
		r := normRevocation(*e.Revocation)
		e.Revocation = &r
	}
	return e
}

func normChange(c storage.Change) storage.Change {
	events := make([]storage.Event, len(c.Events))
	for i, e := range c.Events {
		events[i] = normEvent(e)
	}
	return storage.Change{Revision: c.Revision, Events: events} // without its Slot
}

// show renders a value for a failure message (JSON follows pointers).
func show(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// same fails the test unless got and want are equal after norm.
func same[T any](t *testing.T, what string, got, want T, norm func(T) T) {
	t.Helper()
	if !reflect.DeepEqual(norm(got), norm(want)) {
		t.Errorf("%s:\ngot  %s\nwant %s", what, show(got), show(want))
	}
}

// sameList fails the test unless got and want hold equal records in the
// same order. It reports the IDs first, which is usually enough to see why.
func sameList[T any](t *testing.T, what string, got, want []T, norm func(T) T, id func(T) string) {
	t.Helper()
	gotIDs, wantIDs := make([]string, len(got)), make([]string, len(want))
	for i, v := range got {
		gotIDs[i] = id(v)
	}
	for i, v := range want {
		wantIDs[i] = id(v)
	}
	if !reflect.DeepEqual(gotIDs, wantIDs) {
		t.Errorf("%s: got IDs %q, want %q", what, gotIDs, wantIDs)
		return
	}
	for i := range got {
		same(t, what+" ["+gotIDs[i]+"]", got[i], want[i], norm)
	}
}

func sessionID(s storage.Session) string       { return s.ID }
func banID(b storage.Ban) string               { return b.ID }
func auditID(a storage.AuditRecord) string     { return a.ID }
func apiKeyID(k storage.APIKey) string         { return k.ID }
func signingKeyID(k storage.SigningKey) string { return k.ID }
