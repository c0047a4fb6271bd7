// Package authority holds Portcullis's domain rules: sessions and their
// token rotation, bans and what they match, signing keys, API keys and the
// audit trail. Every state change is one storage.Store Update that writes
// the records, the audit record and the events together.
//
// It may import internal/storage, token and the standard library (plus
// golang-jwt through token). It knows nothing of gRPC or of the generated
// API types: server/ converts requests into the inputs here and the errors
// here into gRPC statuses (server/errors.go).
//
// Time comes from Config.Clock, never from time.Now directly, so expiry is
// decided by comparing times and tests control the clock. Expiry never
// depends on a background job having run.
//
// Choices where the design is silent:
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
