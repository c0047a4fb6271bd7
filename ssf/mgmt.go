package ssf

import (
	"encoding/json"
	"errors"
)

// TransmitterConfig is the transmitter configuration metadata served at
// /.well-known/ssf-configuration (SSF 1.0 §7.1).
type TransmitterConfig struct {
	SpecVersion              string                `json:"spec_version,omitempty"`
	Issuer                   string                `json:"issuer"`
	JWKSURI                  string                `json:"jwks_uri,omitempty"`
	DeliveryMethodsSupported []string              `json:"delivery_methods_supported,omitempty"`
	ConfigurationEndpoint    string                `json:"configuration_endpoint,omitempty"`
	StatusEndpoint           string                `json:"status_endpoint,omitempty"`
	AddSubjectEndpoint       string                `json:"add_subject_endpoint,omitempty"`
	RemoveSubjectEndpoint    string                `json:"remove_subject_endpoint,omitempty"`
	VerificationEndpoint     string                `json:"verification_endpoint,omitempty"`
	CriticalSubjectMembers   []string              `json:"critical_subject_members,omitempty"`
	AuthorizationSchemes     []AuthorizationScheme `json:"authorization_schemes,omitempty"`
	DefaultSubjects          string                `json:"default_subjects,omitempty"` // "ALL" or "NONE"
}

// AuthorizationScheme names how the management API is authorized (SSF 1.0
// §7.1.1), e.g. {"spec_urn": "urn:ietf:rfc:6749"}.
type AuthorizationScheme struct {
	SpecURN string `json:"spec_urn"`
}

// Audience is a JSON aud member: a string or an array of strings; it is
// written as a string when it holds one value.
type Audience []string

// MarshalJSON writes one value as a string, several as an array.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON reads a string or an array of strings.
func (a *Audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = Audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("aud is neither a string nor an array of strings")
	}
	*a = many
	return nil
}

// Delivery is a stream's delivery configuration (SSF 1.0 §8.1.1).
type Delivery struct {
	Method              string `json:"method"`
	EndpointURL         string `json:"endpoint_url,omitempty"`
	AuthorizationHeader string `json:"authorization_header,omitempty"`
	// MaxInFlight (push; the Portcullis extension portcullis_max_in_flight)
	// asks the transmitter to keep up to this many SETs in flight at once,
	// each naming its predecessor (SET.PrevJTI), instead of one at a time:
	// a receiver that reorders them by that chain and commits a run of them
	// together takes SETs far faster. 0 or 1: one at a time.
	MaxInFlight int `json:"portcullis_max_in_flight,omitempty"`
}

// StreamConfig is an event stream's configuration (SSF 1.0 §8.1.1): the
// body of stream creation, reading, update and replacement.
type StreamConfig struct {
	StreamID                string    `json:"stream_id,omitempty"`
	Issuer                  string    `json:"iss,omitempty"`
	Audience                Audience  `json:"aud,omitempty"`
	EventsSupported         []string  `json:"events_supported,omitempty"`
	EventsRequested         []string  `json:"events_requested,omitempty"`
	EventsDelivered         []string  `json:"events_delivered,omitempty"`
	Delivery                *Delivery `json:"delivery,omitempty"`
	MinVerificationInterval int       `json:"min_verification_interval,omitempty"` // seconds
	Description             string    `json:"description,omitempty"`
	InactivityTimeout       int       `json:"inactivity_timeout,omitempty"` // seconds
}

// StreamStatus is a stream's status (SSF 1.0 §8.1.2): the answer of a
// status read and the body of a status update.
type StreamStatus struct {
	StreamID string `json:"stream_id"`
	Status   string `json:"status"` // StatusEnabled, StatusPaused, StatusDisabled
	Reason   string `json:"reason,omitempty"`
}

// SubjectRequest adds or removes a subject of a stream (SSF 1.0 §8.1.3).
type SubjectRequest struct {
	StreamID string   `json:"stream_id"`
	Subject  *Subject `json:"subject"`
	// Verified is whether the receiver verified the subject; absent means
	// true (SSF 1.0 §8.1.3.1), hence a pointer.
	Verified *bool `json:"verified,omitempty"`
}

// VerificationRequest asks for a verification event (SSF 1.0 §8.1.4.2).
type VerificationRequest struct {
	StreamID string `json:"stream_id"`
	State    string `json:"state,omitempty"`
}

// PollRequest is the body of a poll (RFC 8936 §2.4).
type PollRequest struct {
	MaxEvents         *int              `json:"maxEvents,omitempty"` // absent: no limit; 0: acknowledge only
	ReturnImmediately bool              `json:"returnImmediately,omitempty"`
	Ack               []string          `json:"ack,omitempty"`
	SetErrs           map[string]SETErr `json:"setErrs,omitempty"`
}

// SETErr is a receiver's error about one SET in a poll (RFC 8936 §2.4).
type SETErr struct {
	Err         string `json:"err"`
	Description string `json:"description,omitempty"`
}

// PollResponse answers a poll (RFC 8936 §2.5): SETs by jti.
type PollResponse struct {
	Sets          map[string]string `json:"sets"`
	MoreAvailable bool              `json:"moreAvailable,omitempty"`
}

// PushError is the body of a push refused with 400 (RFC 8935 §2.3).
type PushError struct {
	Err         string `json:"err"`
	Description string `json:"description,omitempty"`
}
