package bolt

// The file layout. Every bucket and the schema version are declared here and
// nowhere else; change one and you change the file format, so bump
// schemaVersion (Open refuses a version it does not know).
//
// Values are the JSON encoding of the storage record types with their Go
// field names: renaming a field of a record type is a schema change too.
// Index keys join their parts with sep (0x00), which Put refuses inside the
// indexed fields, so a prefix scan can never run into a neighbour's key.
// Index values are empty; the record lives in the primary bucket only.

// schemaVersion is the version of the layout below. Open refuses a file of
// any other version, older or newer: before 1.0 there is no migration (see
// the README's Compatibility section). Files of version 1 (written by
// development builds, without bucketRefreshTokensBySession), of version 2
// (without the buckets of external issuers), of version 3 (without the
// audit indexes) and of version 4 (without the buckets of shared signals)
// are refused too.
const schemaVersion uint64 = 5

// sep separates the parts of an index key.
const sep = 0x00

var (
	// bucketMeta holds the store's identity and counters, under the meta*
	// keys below.
	bucketMeta = []byte("meta")

	// bucketSessions: session ID -> JSON storage.Session.
	bucketSessions = []byte("sessions")
	// bucketSessionsByTenant: tenant 0 sessionID -> empty.
	bucketSessionsByTenant = []byte("sessions_by_tenant")
	// bucketSessionsByUser: tenant 0 user 0 sessionID -> empty.
	bucketSessionsByUser = []byte("sessions_by_user")
	// bucketSessionsByDevice: tenant 0 device 0 sessionID -> empty; only
	// sessions with a device have an entry.
	bucketSessionsByDevice = []byte("sessions_by_device")

	// bucketRefreshTokens: hash of the secret -> JSON storage.RefreshToken.
	bucketRefreshTokens = []byte("refresh_tokens")
	// bucketRefreshTokensBySession: session ID 0 hash -> empty. Sweeping
	// finds an expired session's tokens (every generation) through it.
	bucketRefreshTokensBySession = []byte("refresh_tokens_by_session")

	// bucketBans: ban ID -> JSON storage.Ban.
	bucketBans = []byte("bans")
	// bucketBansByTenant: tenant 0 banID -> empty (tenant may be "*").
	bucketBansByTenant = []byte("bans_by_tenant")
	// bucketBansBySubject: tenant 0 kind 0 value 0 banID -> empty.
	bucketBansBySubject = []byte("bans_by_subject")

	// bucketAudit: audit record ID (time-ordered) -> JSON storage.AuditRecord.
	bucketAudit = []byte("audit")
	// bucketAuditBySubject: subject 0 auditID -> empty; only records with
	// a subject have an entry. The console's trail of a subject (and a
	// ban's page) reads it instead of the whole trail.
	bucketAuditBySubject = []byte("audit_by_subject")
	// bucketAuditByActor: actor 0 auditID -> empty; only records with an
	// actor have an entry.
	bucketAuditByActor = []byte("audit_by_actor")

	// bucketAPIKeys: API key ID -> JSON storage.APIKey.
	bucketAPIKeys = []byte("api_keys")

	// bucketSigningKeys: key ID (the JWT kid) -> JSON storage.SigningKey.
	bucketSigningKeys = []byte("signing_keys")

	// bucketIssuers: issuer URL -> JSON storage.Issuer.
	bucketIssuers = []byte("issuers")
	// bucketExternalRevocations: storage.ExternalRevocation.Key() -> JSON
	// storage.ExternalRevocation.
	bucketExternalRevocations = []byte("external_revocations")

	// bucketSignalStreams: stream ID -> JSON storage.SignalStream.
	bucketSignalStreams = []byte("signal_streams")
	// bucketSignalTransmitters: transmitter ID -> JSON
	// storage.SignalTransmitter.
	bucketSignalTransmitters = []byte("signal_transmitters")
	// bucketReceivedSETs: storage.ReceivedSET.Key() -> JSON
	// storage.ReceivedSET.
	bucketReceivedSETs = []byte("received_sets")

	// bucketEvents: revision as 8-byte big-endian -> JSON storage.Change.
	// It holds exactly the revisions compacted+1 .. revision (see meta).
	bucketEvents = []byte("events")
)

// allBuckets lists every bucket; Open creates them in a new file and
// requires them in an existing one.
var allBuckets = [][]byte{
	bucketMeta,
	bucketSessions, bucketSessionsByTenant, bucketSessionsByUser, bucketSessionsByDevice,
	bucketRefreshTokens, bucketRefreshTokensBySession,
	bucketBans, bucketBansByTenant, bucketBansBySubject,
	bucketAudit, bucketAuditBySubject, bucketAuditByActor,
	bucketAPIKeys,
	bucketSigningKeys,
	bucketIssuers, bucketExternalRevocations,
	bucketSignalStreams, bucketSignalTransmitters, bucketReceivedSETs,
	bucketEvents,
}

// Keys of bucketMeta.
var (
	// metaSchemaVersion -> 8-byte big-endian schemaVersion.
	metaSchemaVersion = []byte("schema_version")
	// metaStoreID -> 32 lowercase hex digits (128 random bits), written once
	// when the file is created.
	metaStoreID = []byte("store_id")
	// metaRevision -> 8-byte big-endian revision of the last change.
	metaRevision = []byte("revision")
	// metaCompacted -> 8-byte big-endian revision up to which (inclusive)
	// the event log has been deleted.
	metaCompacted = []byte("compacted")
)
