package ssf

import (
	"encoding/json"
	"fmt"
	"time"
)

// Event type URIs (CAEP 1.0, RISC 1.0, SSF 1.0) and delivery method URNs.
const (
	EventSessionRevoked       = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	EventAccountDisabled      = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
	EventAccountEnabled       = "https://schemas.openid.net/secevent/risc/event-type/account-enabled"
	EventCredentialCompromise = "https://schemas.openid.net/secevent/risc/event-type/credential-compromise"
	EventAccountPurged        = "https://schemas.openid.net/secevent/risc/event-type/account-purged"
	EventVerification         = "https://schemas.openid.net/secevent/ssf/event-type/verification"
	EventStreamUpdated        = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated"

	DeliveryPush = "urn:ietf:rfc:8935"
	DeliveryPoll = "urn:ietf:rfc:8936"

	// ContentType is the media type of a SET in a push request (RFC 8417 §2.3).
	ContentType = "application/secevent+jwt"
	// TokenType is the JWS typ header of a SET.
	TokenType = "secevent+jwt"
)

// CAEP initiating_entity values (CAEP 1.0 §2).
const (
	InitiatingAdmin  = "admin"
	InitiatingUser   = "user"
	InitiatingPolicy = "policy"
	InitiatingSystem = "system"
)

// Stream status values (SSF 1.0 §8.1.2).
const (
	StatusEnabled  = "enabled"
	StatusPaused   = "paused"
	StatusDisabled = "disabled"
)

// parseNumericDate reads a NumericDate (RFC 7519 §2): seconds since the
// epoch, integer or fractional.
func parseNumericDate(b []byte) (time.Time, error) {
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return time.Time{}, fmt.Errorf("a NumericDate must be a number: %w", err)
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1<<40 {
		return time.Time{}, fmt.Errorf("NumericDate %.40q out of range", n)
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), nil
}

// CAEPCommon holds the members every CAEP 1.0 event may carry (§2). The
// reasons map a language tag ("en") to the text (CAEP 1.0 §2).
type CAEPCommon struct {
	EventTimestamp   int64             `json:"event_timestamp,omitempty"` // NumericDate
	InitiatingEntity string            `json:"initiating_entity,omitempty"`
	ReasonAdmin      map[string]string `json:"reason_admin,omitempty"`
	ReasonUser       map[string]string `json:"reason_user,omitempty"`
}

// SessionRevoked is the CAEP session-revoked event (CAEP 1.0 §3.1).
type SessionRevoked struct {
	CAEPCommon
}

// AccountDisabled is the RISC account-disabled event (RISC 1.0 §2.3);
// Reason is "hijacking", "bulk-account" or absent.
type AccountDisabled struct {
	Reason string `json:"reason,omitempty"`
}

// AccountEnabled is the RISC account-enabled event (RISC 1.0 §2.4).
type AccountEnabled struct{}

// CredentialCompromise is the RISC credential-compromise event (RISC 1.0
// §2.7); CredentialType (e.g. "password") is required by the spec.
type CredentialCompromise struct {
	CAEPCommon
	CredentialType string `json:"credential_type"`
}

// AccountPurged is the RISC account-purged event (RISC 1.0 §2.2).
type AccountPurged struct{}

// Verification is the SSF verification event (SSF 1.0 §8.1.4.1).
type Verification struct {
	State string `json:"state,omitempty"`
}

// StreamUpdated is the SSF stream-updated event (SSF 1.0 §8.1.5).
type StreamUpdated struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// Event marshals an event payload for SET.Events.
func Event(payload any) (json.RawMessage, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("ssf: event payload: %w", err)
	}
	return b, nil
}
