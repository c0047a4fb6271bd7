// Package console is the operator console in the browser, served by the
// authority under /console/ on its HTTP listener (server.WithConsole).
//
// It owns:
//
//   - Sign-in with an API key, exchanged for a session cookie (session.go):
//     HttpOnly, SameSite=Strict, Secure when the listener has TLS, with an
//     absolute and an idle lifetime. Sessions live in the authority's
//     memory (a restart signs everyone out) and are looked up by the
//     SHA-256 of the cookie; logout deletes one, and every request re-reads
//     the API key, so revoking or expiring the key ends its console
//     sessions at once.
//   - Authorisation with the gRPC server's one scope table: each console
//     page and action names the RPC it stands for, and Config.Scope (the
//     server's table, server/auth.go) says which scope it needs. A page
//     the key may not see is not linked; a form it may not submit is not
//     shown, and a hand-made POST is refused with 403.
//   - CSRF: every POST carries the session's token (a hidden field),
//     compared in constant time, and must come from this origin when the
//     browser says where it comes from.
//   - Security headers on every answer: a CSP without inline script or
//     style (script-src 'self'), frame-ancestors 'none', nosniff,
//     no-referrer, and no caching of pages.
//   - The pages (bans, audit, sessions, fleet, keys) over the domain
//     (internal/authority) and the fleet (internal/fleet): listings use the
//     domain's cursor page tokens, so no page reads everything.
//   - Live parts over server-sent events (live.go): the enforcement of each
//     listed ban ("enforced by N/M mirrors", enforce.go), a ban's rollout
//     and the fleet table, re-read every LiveInterval and sent when they
//     change; a stream ends with its session or the server.
//   - A ban's page shows its create and lift records, read from their
//     times in a window of 20 records of the ban's subject (banTrail),
//     through the store's index of audit records by subject; the audit
//     page's subject and actor filters use the same indexes.
//
// Every change made here is audited by the domain as the key's name, with
// the client's address and the channel "console" (authority.ChannelConsole;
// the gRPC server's calls have "grpc"); the audit page shows the channel
// and filters by it.
//
// Why server-rendered pages and a small hand-written script, not a
// front-end framework or htmx: everything (templates, CSS, script) is
// embedded with go:embed, so the console works offline, with no CDN, and
// nothing but the Go toolchain builds, runs or tests it. Every page works
// without script (plain forms, POST then redirect); console.js (35
// lines, no dependencies, nothing to vendor or audit) only applies
// the server-sent events to the page. The CSP forbids everything else.
//
// It may import internal/authority, internal/fleet, internal/storage and
// the generated API's method names (the keys of the scope table), never
// the generated message types. It is imported by server only.
package console
