// Package storagetest is the conformance suite of the storage contract: one
// set of tests, run unchanged against every backend (bolt and etcd), so
// that the domain logic can rely on the contract rather than on a backend.
// It also owns the bodies of the backends' storage benchmarks (durable
// Updates per second, watchers following the head), so that the backends'
// numbers in BENCHMARKS.md measure the same work.
//
// It tests only what internal/storage promises. In particular it relies on
// revisions being strictly increasing, never on them being gap-free, and it
// never sleeps: it waits on channels, or on contexts with deadlines where it
// must show that something blocks.
//
// It imports internal/storage, testing and the rest of the standard library,
// nothing else.
package storagetest
