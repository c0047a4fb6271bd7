// Package bolttest opens bbolt stores for tests and checks them afterwards.
// Every test in this repository that needs a bolt store uses it, so every
// such test also verifies, when it ends, that the file is consistent
// (bbolt's page check and the store's own invariants, see bolt.Check).
//
// It imports internal/storage/bolt, testing and the standard library.
package bolttest
