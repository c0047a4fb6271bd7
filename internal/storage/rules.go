package storage

// The rules every backend applies the same way: times stored in UTC, what
// a valid event is, and what each query selects.

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidEvent is returned (wrapped by the backend) by Tx.Emit for an
// event that breaks the Event contract.
var ErrInvalidEvent = errors.New("invalid event")

// Every backend stores times in UTC, so that a record reads back equal to
// what was written whatever the process's time zone. These return copies.

func utc(ts ...*time.Time) {
	for _, t := range ts {
		*t = t.UTC()
	}
}

// UTC returns s with every time in UTC.
func (s Session) UTC() Session {
	utc(&s.CreateTime, &s.ExpireTime, &s.RefreshTime, &s.AccessExpireTime, &s.RevokeTime)
	return s
}

// UTC returns r with every time in UTC.
func (r RefreshToken) UTC() RefreshToken { utc(&r.ExpireTime); return r }

// UTC returns b with every time in UTC.
func (b Ban) UTC() Ban {
	utc(&b.CreateTime, &b.ExpireTime, &b.LiftTime, &b.ExpiryAnnounced)
	return b
}

// UTC returns a with every time in UTC.
func (a AuditRecord) UTC() AuditRecord { utc(&a.Time); return a }

// UTC returns k with every time in UTC.
func (k APIKey) UTC() APIKey { utc(&k.CreateTime, &k.ExpireTime, &k.RevokeTime); return k }

// UTC returns k with every time in UTC.
func (k SigningKey) UTC() SigningKey { utc(&k.CreateTime, &k.RetireTime, &k.VerifyUntil); return k }

// UTC returns e with every time in UTC; the payload is copied rather than
// written through the caller's pointer.
func (e Event) UTC() Event {
	utc(&e.Time)
	if e.Ban != nil {
		b := e.Ban.UTC()
		e.Ban = &b
	}
	if e.Session != nil {
		s := e.Session.UTC()
		e.Session = &s
	}
	if e.Key != nil {
		k := e.Key.UTC()
		e.Key = &k
	}
	if e.Issuer != nil {
		i := e.Issuer.UTC()
		e.Issuer = &i
	}
	if e.Revocation != nil {
		r := e.Revocation.UTC()
		e.Revocation = &r
	}
	if e.Signal != nil {
		n := *e.Signal
		e.Signal = &n
	}
	return e
}

// Check enforces the Event contract: exactly one payload, the one its kind
// names, and never a private key (events go to every mirror). Errors wrap
// ErrInvalidEvent.
func (e Event) Check() error {
	n := 0
	for _, set := range []bool{e.Ban != nil, e.Session != nil, e.Key != nil, e.Issuer != nil, e.Revocation != nil, e.Signal != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("%w: %q has %d payloads, want exactly 1", ErrInvalidEvent, e.Kind, n)
	}
	ok := true // a kind this build does not know: only the count is checked
	switch e.Kind {
	case EventBanCreated, EventBanLifted, EventBanExpired:
		ok = e.Ban != nil
	case EventSessionRevoked:
		ok = e.Session != nil
	case EventKeyAdded, EventKeyRetired:
		ok = e.Key != nil
	case EventIssuerUpdated, EventIssuerDeleted:
		ok = e.Issuer != nil
	case EventExternalRevoked:
		ok = e.Revocation != nil
	case EventSignalStreamUpdated, EventSignalStreamDeleted, EventSignalVerification,
		EventSignalTransmitterUpdated, EventSignalTransmitterDeleted:
		ok = e.Signal != nil
	}
	if !ok {
		return fmt.Errorf("%w: %q carries the wrong payload", ErrInvalidEvent, e.Kind)
	}
	if e.Key != nil && len(e.Key.PrivateKey) > 0 {
		return fmt.Errorf("%w: %q carries a private key", ErrInvalidEvent, e.Kind)
	}
	return nil
}

// Matches reports whether s passes q's filters (not After). Backends use an
// index where the query allows and this for the rest, so both agree on
// what a query means.
func (q SessionQuery) Matches(s *Session) bool {
	return (q.TenantID == "" || s.TenantID == q.TenantID) &&
		(q.UserID == "" || s.UserID == q.UserID) &&
		(q.DeviceID == "" || s.DeviceID == q.DeviceID)
}

// Matches reports whether b passes q's filters (not After).
func (q BanQuery) Matches(b *Ban) bool {
	return (q.TenantID == "" || b.TenantID == q.TenantID) &&
		(q.Kind == "" || b.Kind == q.Kind) &&
		(q.Value == "" || b.Value == q.Value)
}

// Matches reports whether a passes q's filters (not After).
func (q AuditQuery) Matches(a *AuditRecord) bool {
	return (q.TenantID == "" || a.TenantID == q.TenantID) &&
		(q.Subject == "" || a.Subject == q.Subject) &&
		(q.Actor == "" || a.Actor == q.Actor) &&
		(q.Action == "" || a.Action == q.Action) &&
		(q.Channel == "" || a.Channel == q.Channel) &&
		(q.From.IsZero() || !a.Time.Before(q.From)) &&
		(q.To.IsZero() || a.Time.Before(q.To))
}
