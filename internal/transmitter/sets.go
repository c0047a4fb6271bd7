package transmitter

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/ssf"
)

// pending is one SET a stream owes its receiver, before signing.
type pending struct {
	revision int64
	set      ssf.SET
}

// jti is deterministic (stream, revision, index of the event in its
// change), so that a SET delivered again after a restart carries the same
// one and receivers drop the duplicate.
func jti(stream string, revision int64, index int) string {
	return fmt.Sprintf("%s-%d-%d", stream, revision, index)
}

// setsFor maps a change onto the SETs the stream owes: the events it
// requested (and this transmitter supports), about its subjects when it
// named any, and its own verification events.
func (t *Transmitter) setsFor(st storage.SignalStream, ch storage.Change) []pending {
	var out []pending
	for i, ev := range ch.Events {
		typ, sub, payload, ok := t.mapEvent(st, ev)
		if !ok || !slices.Contains(st.EventsDelivered, typ) && typ != ssf.EventVerification {
			continue
		}
		if typ != ssf.EventVerification && !subjectWanted(st, sub) {
			continue
		}
		body, err := json.Marshal(payload)
		if err != nil { // the payloads are plain structs: never
			t.log.Error("encoding a SET event", "stream", st.ID, "error", err)
			continue
		}
		out = append(out, pending{revision: ch.Revision, set: ssf.SET{
			Issuer: t.cfg.Issuer, Audience: st.Audience, JTI: jti(st.ID, ch.Revision, i),
			SubjectID: sub, Events: map[string]json.RawMessage{typ: body},
		}})
	}
	return out
}

// user is the subject of a user of a tenant: iss_sub with the issuer of
// the authority's access tokens (the namespace its user IDs live in, and
// the issuer a receiver trusting those tokens has registered), inside a
// complex subject with the tenant unless the ban covers every tenant.
func (t *Transmitter) user(tenant, user string) *ssf.Subject {
	u := &ssf.Subject{Format: "iss_sub", Iss: t.cfg.Authority.Config().Issuer, Sub: user}
	if tenant == storage.AllTenants || tenant == "" {
		return u
	}
	return &ssf.Subject{Format: "complex", User: u, Tenant: &ssf.Subject{Format: "opaque", ID: tenant}}
}

// reasons are CAEP's reason_admin and reason_user, in English.
func reasons(s string) map[string]string {
	if s == "" {
		return nil
	}
	return map[string]string{"en": s}
}

// mapEvent maps one event of the log onto a SET's event type, subject
// and payload; ok is false for events no SET reports.
func (t *Transmitter) mapEvent(st storage.SignalStream, ev storage.Event) (typ string, sub *ssf.Subject, payload any, ok bool) {
	ts := ev.Time.Unix()
	switch ev.Kind {
	case storage.EventSessionRevoked:
		s := ev.Session
		if s == nil {
			return "", nil, nil, false
		}
		sub = &ssf.Subject{Format: "complex",
			User:    &ssf.Subject{Format: "iss_sub", Iss: t.cfg.Authority.Config().Issuer, Sub: s.UserID},
			Session: &ssf.Subject{Format: "opaque", ID: s.ID},
			Tenant:  &ssf.Subject{Format: "opaque", ID: s.TenantID}}
		return ssf.EventSessionRevoked, sub, ssf.SessionRevoked{CAEPCommon: ssf.CAEPCommon{EventTimestamp: ts,
			InitiatingEntity: initiator(s.RevokedBy), ReasonAdmin: reasons(s.RevokeReason)}}, true
	case storage.EventExternalRevoked:
		r := ev.Revocation
		if r == nil || r.SessionID == "" { // a token (jti) revocation names no session
			return "", nil, nil, false
		}
		// The session of an external issuer, whose user the revocation
		// does not know: the session alone, as iss_sub (the session
		// claim's value in that issuer's namespace), which is what a
		// receiver's revocation takes (issuer, sid).
		sub = &ssf.Subject{Format: "complex",
			Session: &ssf.Subject{Format: "iss_sub", Iss: r.Issuer, Sub: r.SessionID}}
		return ssf.EventSessionRevoked, sub, ssf.SessionRevoked{CAEPCommon: ssf.CAEPCommon{EventTimestamp: ts,
			InitiatingEntity: initiator(r.RevokedBy), ReasonAdmin: reasons(r.Reason)}}, true
	case storage.EventBanCreated, storage.EventBanLifted, storage.EventBanExpired:
		b := ev.Ban
		if b == nil || b.Kind != storage.SubjectUser || !b.Full() {
			return "", nil, nil, false
		}
		sub = t.user(b.TenantID, b.Value)
		if ev.Kind == storage.EventBanCreated {
			// RISC names two reasons (hijacking, bulk-account) and allows
			// others: the ban's own reason says most.
			return ssf.EventAccountDisabled, sub, ssf.AccountDisabled{Reason: b.Reason}, true
		}
		return ssf.EventAccountEnabled, sub, ssf.AccountEnabled{}, true
	case storage.EventSignalVerification:
		n := ev.Signal
		if n == nil || n.StreamID != st.ID {
			return "", nil, nil, false
		}
		// SSF 1.0 §8.1.4.1: the verification event's subject is the stream.
		return ssf.EventVerification, &ssf.Subject{Format: "opaque", ID: st.ID}, ssf.Verification{State: n.State}, true
	}
	return "", nil, nil, false
}

// initiator is CAEP's initiating_entity: "system" for what Portcullis did
// by itself, "admin" for an operator's API key.
func initiator(actor string) string {
	if actor == "" || actor == "system" {
		return ssf.InitiatingSystem
	}
	return ssf.InitiatingAdmin
}

// subjectWanted reports whether a stream with subjects named the event's
// subject: the whole subject, or its user, session or tenant part.
func subjectWanted(st storage.SignalStream, sub *ssf.Subject) bool {
	if len(st.Subjects) == 0 {
		return true
	}
	if sub == nil {
		return false
	}
	for _, s := range []*ssf.Subject{sub, sub.User, sub.Session, sub.Tenant} {
		if s != nil && slices.Contains(st.Subjects, s.Key()) {
			return true
		}
	}
	return false
}

// sign signs a SET with the stream's algorithm, iat now.
func (t *Transmitter) sign(ctx context.Context, st storage.SignalStream, p pending) (string, error) {
	kid, key, err := t.cfg.Authority.SETSigner(ctx, st.Algorithm)
	if err != nil {
		return "", err
	}
	set := p.set
	set.IssuedAt = t.now()
	return ssf.Sign(set, kid, st.Algorithm, key)
}
