// Package fault holds fault cases, each a test against a real authority
// (bbolt file, gRPC on loopback TCP): a commit that fails (disk full), the
// authority unreachable beyond a mirror's staleness bound, a Watch
// subscriber that stops reading, and a client that opens thousands of
// streams.
//
// It has only tests. They assemble the authority from internal/authority,
// internal/storage (with a store wrapper that fails on demand, which is why
// they cannot use authoritytest's sealed authority), internal/storage/bolt
// and server/, and reach it through client/ and gen/ as a service would.
package fault
