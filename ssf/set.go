package ssf

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// SET is a Security Event Token's claims (RFC 8417 §2.2), with SSF 1.0's
// top-level sub_id (§4.1.1).
type SET struct {
	Issuer    string
	Audience  []string
	IssuedAt  time.Time
	JTI       string
	TxnID     string
	SubjectID *Subject
	// PrevJTI is the jti of the SET sent before this one in the same
	// stream (the Portcullis extension claim portcullis_prev_jti), set by a
	// transmitter that keeps several SETs in flight for a receiver that
	// asked for it (Delivery.MaxInFlight), so that the receiver applies
	// them in the stream's order whatever order they arrive in. Empty: the
	// transmitter has no earlier SET of the stream unacknowledged.
	PrevJTI string
	// Events maps each event type URI to its payload (one event per SET in
	// SSF 1.0 §4.1.3, which Verify does not require: RFC 8417 allows more).
	Events map[string]json.RawMessage
}

// setJSON is the SET's JSON. aud is a string or an array (RFC 7519 §4.1.3),
// so it is read raw; iat is a NumericDate (possibly fractional).
type setJSON struct {
	Issuer    string                     `json:"iss"`
	Audience  json.RawMessage            `json:"aud,omitempty"`
	IssuedAt  json.RawMessage            `json:"iat"`
	JTI       string                     `json:"jti"`
	TxnID     string                     `json:"txn,omitempty"`
	SubjectID *Subject                   `json:"sub_id,omitempty"`
	PrevJTI   string                     `json:"portcullis_prev_jti,omitempty"`
	Events    map[string]json.RawMessage `json:"events"`
}

// MarshalJSON writes the claims; a single audience is written as a string,
// which every SET receiver accepts (RFC 7519 §4.1.3).
func (s SET) MarshalJSON() ([]byte, error) {
	var aud any = s.Audience
	if len(s.Audience) == 1 {
		aud = s.Audience[0]
	}
	audRaw, err := json.Marshal(aud)
	if err != nil {
		return nil, err
	}
	if len(s.Audience) == 0 {
		audRaw = nil
	}
	return json.Marshal(setJSON{
		Issuer: s.Issuer, Audience: audRaw, IssuedAt: json.RawMessage(fmt.Sprint(s.IssuedAt.Unix())),
		JTI: s.JTI, TxnID: s.TxnID, SubjectID: s.SubjectID, PrevJTI: s.PrevJTI, Events: s.Events,
	})
}

// UnmarshalJSON reads the claims, accepting aud as a string or an array.
func (s *SET) UnmarshalJSON(b []byte) error {
	var w setJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	out := SET{Issuer: w.Issuer, JTI: w.JTI, TxnID: w.TxnID, SubjectID: w.SubjectID, PrevJTI: w.PrevJTI, Events: w.Events}
	if len(w.Audience) > 0 && string(w.Audience) != "null" {
		var one string
		if err := json.Unmarshal(w.Audience, &one); err == nil {
			out.Audience = []string{one}
		} else if err := json.Unmarshal(w.Audience, &out.Audience); err != nil {
			return errors.New("aud is neither a string nor an array of strings")
		}
	}
	if len(w.IssuedAt) > 0 && string(w.IssuedAt) != "null" {
		t, err := parseNumericDate(w.IssuedAt)
		if err != nil {
			return fmt.Errorf("iat: %w", err)
		}
		out.IssuedAt = t
	}
	*s = out
	return nil
}

// EventSubject returns the subject of the event of type uri: the SET's
// top-level sub_id (SSF 1.0 §4.1.1), or else the event's own "subject"
// member, which transmitters following earlier SSF drafts and RFC 8417's
// examples send. It returns nil when there is neither or the event's
// subject is not valid (Verify already validated sub_id).
func (s SET) EventSubject(uri string) *Subject {
	if s.SubjectID != nil {
		return s.SubjectID
	}
	var ev struct {
		Subject *Subject `json:"subject"`
	}
	if json.Unmarshal(s.Events[uri], &ev) != nil || ev.Subject == nil || ev.Subject.Validate() != nil {
		return nil
	}
	return ev.Subject
}
