// Package authority holds Portcullis's domain rules: sessions and their
// token rotation, bans and what they match, signing keys, API keys and the
// audit trail. Every state change is one storage.Store Update that writes
// the records, the audit record and the events together, with one
// exception, below: revoking more sessions than the store commits at once.
//
// It alone holds the Store: the event stream reads it through the
// authority (Watch, Revision, StoreID, StreamSnapshot, Presence), so that
// no caller reaches past the domain. The Shared Signals receiver
// (internal/receiver) writes its own records (transmitters, received SETs)
// through Update and fetches transmitters' documents with the issuers'
// client and URL rules (receiverapi.go); its bans and revocations go
// through the domain's methods.
//
// # The last admin key
//
// RevokeAPIKey refuses (ErrLastAdminKey) to revoke the last unrevoked,
// unexpired key with scope admin, reading every key in the revoking
// transaction so that concurrent revocations cannot both pass. The API
// has no way to force it: create another admin key first. An admin key
// that expires counts until it expires, and its expiry is not prevented;
// for that, and for a lost secret, RecoverAdminKey creates an
// admin key straight in the store, for `portcullis recover-admin` on a
// stopped authority's store, audited as "apikey.recover" by
// "offline-recovery".
//
// # Revoking many sessions
//
// CreateBan (a full ban) and RevokeUserSessions revoke every live session
// they match, which can be any number, while the etcd backend bounds one
// Update (--max-txn-ops, default 128 keys). They first try one Update with
// everything (bolt always takes it, so nothing changes there; etcd takes it
// when it fits). When the store answers storage.ErrTxnTooLarge they split
// (revokeAll):
//   - The first Update commits what must be atomic: the ban, its
//     ban_created event and its "ban.create" audit record, with as many
//     revocations as fit (100, halved until it fits; none if only the ban
//     does). From that revision every mirror refuses the user's or
//     device's tokens and refresh and new sessions are refused, so the ban
//     is enforced before any later batch runs.
//   - Later Updates revoke the rest, 100 (or the size that fitted) at a
//     time, each its own change of session_revoked events and its own audit
//     record ("session.revoke_ban", or "session.revoke_user"), whose
//     revoked_sessions sum to the total. Each re-reads the sessions after
//     the last one revoked and revokes only those still live, so a batch
//     run again, or racing another revocation, does no harm. A ban refuses
//     new matching sessions, so none appears behind the cursor.
//   - The call returns the total and the revision of the last Update; a
//     caller that waits for that revision waits for every revocation.
//   - If a later Update fails, the call fails with *IncompleteError: the
//     ban is in force and the revocations committed so far stand, the rest
//     of the sessions are still live. The server reports the failure's own
//     code with the ban ID and the count in the ErrorInfo metadata; the
//     caller revokes the rest with RevokeUserSessions (user bans) or by
//     creating the same ban again (a full ban revokes every matching live
//     session) and lifting the extra one.
//
// Between the first Update and the last, a mirror has the ban but not yet
// every revocation. For user and device bans that changes nothing (the ban
// refuses every token of the subject); for an IP ban, a token of a matched
// session presented from another address is refused only once its
// revocation arrives, which is what the etcd round trips of the batches
// take.
//
// Key rotation deletes at most 32 unusable signing keys per Update for the
// same reason; the rest go with the next rotations.
//
// # Token revocation (RFC 7009)
//
// RevokeToken (revoketoken.go) revokes the session a refresh token (by
// its hash, any generation) or an access token (signature by any stored
// key, issuer and audience; expiry ignored) belongs to, audited as
// "session.revoke_token". A token that names no live session revokes
// nothing and is no error, as RFC 7009 §2.2 requires.
//
// # Ban expiry announcements
//
// A temporary ban runs out without a write, so nothing in the event log
// says so. AnnounceExpiredBans (banexpiry.go), which the Shared Signals
// transmitter calls in a loop, writes that event once per full user ban:
// ExpiryAnnounced set and a ban.expired event, in batches bounded like
// the revocations' (etcd's --max-txn-ops), each re-checking its bans so
// that racing callers on several replicas announce each ban once.
//
// # External issuers
//
// issuers.go keeps the external OIDC issuers whose tokens VerifySession
// and every mirror accept (validated settings, audited as issuer.create,
// issuer.update, issuer.delete), issuerfetch.go fetches their discovery
// documents and JWKS (go-jose parses the JWKs; keys are stored as PKIX DER
// with the algorithms bound to each) and keeps them current:
// RunIssuerFetcher, on every replica, refetches when Cache-Control's
// max-age (bounded to [1 min, 24 h]) has passed or when a token names an
// unknown kid (IssuerKeyMissing, at most once a minute), and emits
// issuer.updated only when the keys change (audited as issuer.keys). A
// failed fetch keeps the last good keys and is recorded in the issuer's
// fetch status, without an event. external.go verifies an external token
// at VerifySession (token.VerifyExternal, then the ban lookups of a native
// token in the issuer's tenant); extrevoke.go revokes an external session
// (by its session claim) or token (by jti), kept for the issuer's max token
// lifetime plus leeway and swept by the fetcher's passes after that.
//
// # Sweeping ended sessions
//
// Sweep (run every --sweep-interval by the server) deletes the
// sessions that ended more than a retention ago (default 7 days), each with
// every refresh-token record of its lineage, found through the store's
// index by session (storage.ReadTx.RefreshTokens). It keeps everything
// still needed: a session that has not ended (a revoked one's tokens must
// answer SESSION_REVOKED or TOKEN_THEFT_DETECTED until then), a revoked
// session whose access tokens may be valid (the Watch snapshot carries it),
// and every ban and key (audit records have their own retention, below).
// Deletions are not Updates of their
// own with audit records and events: they are housekeeping, logged as one
// line per pass. Each Update deletes at most 100 keys (a token is two, a
// session at most four) and re-reads what it deletes, tokens before their
// session, so passes on several replicas, or a pass that stopped part way,
// do no harm. The scan reads sessions in ID (creation) order in pages and
// stops at the first created after the cutoff; there is no expiry index,
// since a full read every few minutes costs no writer anything and the
// index would cost every login a write.
//
// # Sweeping old audit records
//
// SweepAudit (run by the same sweeper) deletes the audit
// records older than a retention (default 90 days; 0 keeps them forever),
// so that a flood of denied calls does not stay on disk for good. Record
// IDs are time-ordered: each Update reads the next records from the oldest
// and deletes up to 99 of them (one key each, plus etcd's guard key),
// stopping at the first within the retention. Records never change, so
// the deleting Update's own read is the only check needed, and replicas
// sweeping at once lose a race, run again and find the records gone.
//
// Audit record IDs being time-ordered also serves listings: one with a
// start time starts its scan at it (idBefore), so the last hour's records
// cost the last hour's reads. The other filters (subject, actor, action,
// tenant) are checked record by record.
//
// # Refusing invalid refresh tokens early
//
// RefreshSession refuses a token that is not shaped like one (prefix,
// length, base64url) before touching the store, and one whose hash a read
// transaction does not find before entering the writer: a flood of
// invalid tokens costs reads, not write transactions. Everything else
// (theft, revocation, expiry, bans, the rotation) is decided in the write
// transaction.
//
// It may import internal/storage, token, ident (the rules for IDs, names,
// free text and IPv4 forms it shares with the interceptors) and the
// standard library (plus golang-jwt through token, x/text through ident).
// It knows nothing of gRPC or of the generated
// API types: server/ converts requests into the inputs here and maps the
// errors here onto the error catalogue, package rpcerr (server/errors.go).
//
// Time comes from Config.Clock, never from time.Now directly, so expiry is
// decided by comparing times and tests control the clock. Expiry never
// depends on a background job having run: the sweep only reclaims space,
// and a swept session's refresh tokens answer TOKEN_INVALID instead of
// SESSION_EXPIRED.
//
// Choices docs/design.md leaves open:
//   - Sessions end SessionTTL (default 30 days) after creation; rotation does
//     not extend them. Access tokens live AccessTTL (default 15 minutes).
//   - Routine refresh-token rotations are not audited (the session keeps its
//     last refresh time); token theft is.
//   - A ban on "*" or on an IP prefix revokes sessions by scanning the
//     sessions of the tenant (or all tenants for "*"); user and device bans
//     in one tenant use an index.
//   - IP bans are matched by looking up every prefix length of the address
//     (33 lookups for IPv4, 129 for IPv6), so the cost does not grow with
//     the number of IP bans.
package authority
