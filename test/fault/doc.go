// Package fault holds the fault cases of issue 8, each a test against a
// real authority (bbolt file, gRPC on loopback TCP): a commit that fails
// (disk full), the authority unreachable beyond a mirror's staleness bound,
// a Watch subscriber that stops reading, and a client that opens thousands
// of streams.
package fault
