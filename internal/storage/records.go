package storage

import (
	"net/netip"
	"time"
)

// Session is one login of a user: the refresh-token lineage and the access
// tokens issued from it.
type Session struct {
	ID         string
	TenantID   string
	UserID     string
	DeviceID   string            // empty when none
	ClientIP   netip.Addr        // invalid (zero) when none
	Attributes map[string]string // free-form, small

	CreateTime time.Time
	// ExpireTime is when the session (and its refresh token) ends.
	ExpireTime time.Time
	// RefreshTime is the last rotation (CreateTime before the first).
	RefreshTime time.Time
	// RefreshGeneration counts rotations; the current refresh token has
	// this generation, every earlier one is superseded.
	RefreshGeneration uint64
	// AccessExpireTime is the latest expiry of any access token issued for
	// the session: a revoked session matters to verifiers until then.
	AccessExpireTime time.Time

	RevokeTime   time.Time // zero while live
	RevokeReason string
	RevokedBy    string // actor: API key name, or "system"
}

// Revoked reports whether the session has been revoked.
func (s Session) Revoked() bool { return !s.RevokeTime.IsZero() }

// ExpiredAt reports whether the session has ended by t.
func (s Session) ExpiredAt(t time.Time) bool { return !t.Before(s.ExpireTime) }

// RefreshToken maps the hash of a refresh token's secret to its session.
type RefreshToken struct {
	Hash       []byte
	SessionID  string
	Generation uint64
	// ExpireTime is when the session ends; the record may be swept then.
	ExpireTime time.Time
}

// SessionQuery selects sessions. Empty fields do not filter.
type SessionQuery struct {
	TenantID string // "" = every tenant
	UserID   string // needs TenantID
	DeviceID string // needs TenantID
	After    string // only IDs greater than this
}

// SubjectKind is what a ban applies to.
type SubjectKind string

const (
	SubjectUser   SubjectKind = "user"
	SubjectIP     SubjectKind = "ip"
	SubjectDevice SubjectKind = "device"
)

// AllTenants is the tenant of a ban that applies in every tenant.
const AllTenants = "*"

// Ban forbids a subject a tenant's services (all of them, or only some
// capabilities) until it expires or is lifted.
type Ban struct {
	ID       string
	TenantID string // a tenant, or AllTenants
	Kind     SubjectKind
	// Value is the user ID, the device ID, or the canonical IP prefix
	// ("203.0.113.0/24", a single address as "/32" or "/128").
	Value string
	// Capabilities empty means a full ban.
	Capabilities []string
	Reason       string
	Policy       string
	CreatedBy    string
	CreatorAddr  string
	CreateTime   time.Time
	ExpireTime   time.Time // zero = permanent

	LiftTime   time.Time // zero while not lifted
	LiftedBy   string
	LiftReason string

	// ExpiryAnnounced is when EventBanExpired was emitted for the ban;
	// zero before (and for bans that never expire).
	ExpiryAnnounced time.Time
}

// Full reports whether the ban forbids everything (no capability list).
func (b Ban) Full() bool { return len(b.Capabilities) == 0 }

// Lifted reports whether the ban has been lifted.
func (b Ban) Lifted() bool { return !b.LiftTime.IsZero() }

// ExpiredAt reports whether a temporary ban has run out by t.
func (b Ban) ExpiredAt(t time.Time) bool {
	return !b.ExpireTime.IsZero() && !t.Before(b.ExpireTime)
}

// ActiveAt reports whether the ban applies at t.
func (b Ban) ActiveAt(t time.Time) bool { return !b.Lifted() && !b.ExpiredAt(t) }

// BanQuery selects bans by their indexed fields. Empty fields do not filter.
type BanQuery struct {
	TenantID string      // "" = every tenant; AllTenants selects only "*" bans
	Kind     SubjectKind // needs TenantID
	Value    string      // needs Kind
	After    string
}

// AuditRecord is one entry of the append-only audit trail.
type AuditRecord struct {
	ID        string // time-ordered
	Time      time.Time
	Action    string // e.g. "ban.create", "session.revoke"
	Actor     string // API key name, or "system"
	ActorAddr string // caller's network address
	// Channel is how the change came: "grpc" (the API), "console" (the
	// operator console); empty when no call made it (denied-call
	// summaries, offline recovery).
	Channel  string
	TenantID string
	Subject  string // "user:alice", "ip:203.0.113.0/24", "device:d1", "session:ses_..."
	TargetID string // ban or session ID
	Reason   string
	Policy   string
	Details  map[string]string
}

// AuditQuery selects audit records. Empty fields do not filter.
type AuditQuery struct {
	TenantID string
	Subject  string
	Actor    string
	Action   string
	Channel  string
	From     time.Time // inclusive; zero = unbounded
	To       time.Time // exclusive; zero = unbounded
	After    string
}

// APIKey is a caller's credential. The secret itself is never stored.
type APIKey struct {
	ID         string
	Name       string
	SecretHash []byte // SHA-256 of the secret
	Scopes     []string
	CreateTime time.Time
	ExpireTime time.Time // zero = never
	RevokeTime time.Time // zero while valid
	CreatedBy  string
}

// SigningKey is an Ed25519 key that signs access tokens ("EdDSA"), or the
// RSA key that signs only SETs ("RS256": PKCS#8 DER private, PKIX DER public).
type SigningKey struct {
	ID         string // the JWT "kid"
	Algorithm  string // "EdDSA" or "RS256"
	PrivateKey []byte // EdDSA: ed25519 seed (32 bytes); RS256: PKCS#8 DER
	PublicKey  []byte
	CreateTime time.Time
	// RetireTime is when the key stopped signing (zero: the current key).
	RetireTime time.Time
	// VerifyUntil is when the last token the key signed expires (zero while
	// it still signs); after that the key can be deleted.
	VerifyUntil time.Time
}

// EventKind is what an event reports.
type EventKind string

const (
	EventBanCreated     EventKind = "ban.created"
	EventBanLifted      EventKind = "ban.lifted"
	EventSessionRevoked EventKind = "session.revoked"
	EventKeyAdded       EventKind = "key.added"
	EventKeyRetired     EventKind = "key.retired"
)

// Event is one state change a verifier needs. Exactly one of Ban, Session,
// Key, Issuer, Revocation and Signal is set, according to Kind. Key never carries the private
// key.
type Event struct {
	Kind    EventKind
	Time    time.Time
	Ban     *Ban
	Session *Session
	Key     *SigningKey
	Issuer  *Issuer `json:",omitempty"`
	// Revocation is the payload of EventExternalRevoked.
	Revocation *ExternalRevocation `json:",omitempty"`
	// Signal is the payload of the signal.* events (signals.go).
	Signal *SignalNote `json:",omitempty"`
}

// Change is everything one Update emitted, under one revision.
type Change struct {
	Revision int64
	Events   []Event

	slot *Slot // shared by the watchers that take it from a Ring
}
