package storage

import (
	"time"
)

// The records of OpenID Shared Signals (SSF): the event streams this
// authority transmits, the transmitters it receives from, and the SETs it
// has received (so a jti is not applied twice). They are not mirrored: the
// events below reach the transmitter and receiver inside the authority, and
// the server's event stream drops their kinds.

// SignalStream is one SSF event stream this authority transmits.
type SignalStream struct {
	ID              string
	Owner           string   // API key ID that created it; only it (or an admin key) manages it
	OwnerName       string   // that key's name, for audit and listings
	Audience        []string // the SETs' aud
	EventsRequested []string // event type URIs the receiver asked for
	EventsDelivered []string // requested ∩ supported
	Description     string
	DeliveryMethod  string // "urn:ietf:rfc:8935" (push) or "urn:ietf:rfc:8936" (poll)
	EndpointURL     string // push: the receiver's URL; poll: this authority's poll URL
	// AuthorizationHeader is sent as Authorization with every push (a secret).
	AuthorizationHeader string
	// MaxInFlight (push): how many SETs may be in flight at once, each
	// naming its predecessor (ssf.SET.PrevJTI); 0 or 1: one at a time.
	MaxInFlight  int
	Algorithm    string // SET signing: "EdDSA" (default) or "RS256"
	Status       string // "enabled", "paused", "disabled"
	StatusReason string
	// Subjects: canonical JSON (ssf.Subject.Key) of the subjects added;
	// empty = every subject.
	Subjects []string
	// Position: the revision of the event log up to which every event has
	// been delivered and acknowledged (push: 202; poll: ack). Written
	// without an event, at most every 100 ms by a delivering worker (at
	// least once: a restart redelivers from here).
	Position int64
	// Acked: poll acknowledgements of SETs beyond Position (jti values),
	// until contiguous.
	Acked []string
	// Pusher is the replica (transmitter.Config.Holder) holding the push
	// lease until PushLeaseUntil: only it delivers the stream. Written
	// without an event.
	Pusher           string
	PushLeaseUntil   time.Time
	OutageSince      time.Time // push: first failure of the current outage; zero when none
	LastDeliveryTime time.Time
	LastError        string
	CreateTime       time.Time
	UpdateTime       time.Time
}

// UTC returns s with every time in UTC.
func (s SignalStream) UTC() SignalStream {
	utc(&s.PushLeaseUntil, &s.OutageSince, &s.LastDeliveryTime, &s.CreateTime, &s.UpdateTime)
	return s
}

// CheckKeys checks the stream's key (its ID).
func (s SignalStream) CheckKeys() error { return checkKeyPart("signal stream ID", s.ID, false) }

// SignalTransmitter is a transmitter this authority receives signals from.
type SignalTransmitter struct {
	ID                    string // "stx_" + random, chosen at creation
	ConfigURL             string // its /.well-known/ssf-configuration
	Issuer                string // its "issuer" (the SETs' iss)
	JWKSURI               string
	Audience              string        // the aud its SETs must carry for us
	DeliveryMethod        string        // push or poll URN, as SignalStream's
	StreamID              string        // our stream at the transmitter
	ConfigurationEndpoint string        // the transmitter's stream management endpoint
	PollURL               string        // poll: the stream's endpoint_url at the transmitter
	BearerToken           string        // credential we present to the transmitter (a secret, stored as is)
	PushSecretHash        []byte        // push: SHA-256 of the secret we gave it as authorization_header
	TenantID              string        // tenant of the bans it makes ("*" = every tenant)
	BanDuration           time.Duration // 0 = permanent
	Description           string
	Keys                  []IssuerKey // its JWKS as last fetched
	CreateTime            time.Time
	UpdateTime            time.Time
	CreatedBy             string
	// Status, written without an event.
	LastSuccessTime time.Time
	LastErrorTime   time.Time
	LastError       string
}

// UTC returns x with every time in UTC.
func (x SignalTransmitter) UTC() SignalTransmitter {
	utc(&x.CreateTime, &x.UpdateTime, &x.LastSuccessTime, &x.LastErrorTime)
	return x
}

// CheckKeys checks the transmitter's key (its ID).
func (x SignalTransmitter) CheckKeys() error {
	return checkKeyPart("signal transmitter ID", x.ID, false)
}

// ReceivedSET marks a SET a receiver applied (or refused as a replay): its
// jti is not applied twice. Kept until KeepUntil (the SET's iat plus the
// accepted window), then swept.
type ReceivedSET struct {
	Transmitter string // SignalTransmitter.ID
	JTI         string
	Event       string // event type URI
	ReceiveTime time.Time
	KeepUntil   time.Time
}

// Key is the record's key, ReceivedSETKey(Transmitter, JTI).
func (r ReceivedSET) Key() string { return ReceivedSETKey(r.Transmitter, r.JTI) }

// ReceivedSETKey is the key of the SET jti received from a transmitter:
// the two joined by NUL (neither may contain one), so one transmitter's
// jti never collides with another's.
func ReceivedSETKey(transmitter, jti string) string { return transmitter + "\x00" + jti }

// UTC returns r with every time in UTC.
func (r ReceivedSET) UTC() ReceivedSET {
	utc(&r.ReceiveTime, &r.KeepUntil)
	return r
}

// CheckKeys checks the fields of the record's key: a transmitter and a jti.
func (r ReceivedSET) CheckKeys() error {
	return keyParts("received SET transmitter", r.Transmitter, "received SET jti", r.JTI)
}

// Event kinds of shared signals. Their payload is Event.Signal, except
// EventBanExpired's: Event.Ban (with ExpiryAnnounced set).
const (
	// EventBanExpired: a temporary ban ran out (announced once).
	EventBanExpired EventKind = "ban.expired"
	// EventSignalStreamUpdated: a stream was created, changed, or its
	// status changed.
	EventSignalStreamUpdated EventKind = "signal.stream.updated"
	EventSignalStreamDeleted EventKind = "signal.stream.deleted"
	// EventSignalVerification: a receiver asked for a verification event.
	EventSignalVerification       EventKind = "signal.verification"
	EventSignalTransmitterUpdated EventKind = "signal.transmitter.updated"
	EventSignalTransmitterDeleted EventKind = "signal.transmitter.deleted"
)

// SignalNote is the payload of the signal.* events: which stream or
// transmitter changed (the record itself is read from the store, so its
// secrets never enter the event log), and a verification's state.
type SignalNote struct {
	StreamID      string `json:",omitempty"`
	TransmitterID string `json:",omitempty"`
	State         string `json:",omitempty"` // the verification event's state
}
