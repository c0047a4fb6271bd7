// Package authoritytest starts a real Portcullis authority for tests, as
// net/http/httptest starts a real HTTP server: the authority and the gRPC
// server that `portcullis serve` runs, over a bbolt file of their own,
// served in memory over grpc bufconn (and, on request, on a loopback TCP
// port), with a clock the test moves.
//
// It is for code that talks to an authority (a service behind the
// interceptors, a client.Mirror, a command) and wants the real thing
// rather than a fake: real tokens, real bans, the real event stream.
//
//	a := authoritytest.Start(t, authoritytest.Options{})
//	admin := a.Dial()                                   // admin key
//	watcher := a.Dial(client.WithAPIKey(a.NewAPIKey("svc", "events:watch")))
//	m, stop, err := client.StartMirror(ctx, watcher, client.MirrorOptions{Clock: a.Clock().Now})
//
// What it owns: the store (a bbolt file in t.TempDir(), or, under
// Options.EtcdEndpoints, a key prefix in etcd), the authority's signing
// key and bootstrap admin key (AdminKey), the server and its listeners,
// and every client Dial returned, which it closes when the authority
// closes. Mirrors and services the test starts are the test's
// (BeforeWatchMessage holds a mirror back from outside it). Whenever the
// authority stops (Stop, Restart, the test's end) it checks the bbolt
// file, as internal/storage/bolt/bolttest does: bbolt's page check and the
// store's invariants, failing the test on any inconsistency.
//
// Beyond one authority for one test:
//
//   - Stop and Restart take the authority down and bring it back on the
//     same data and address, as a restarted `portcullis serve`: clients
//     from Dial reconnect, mirrors resume. A fresh Authority is a wiped
//     store (another store_id); DialContext lets a test's dialer move a
//     client from one Authority to another.
//   - SeedBans writes many bans in one transaction, for volume tests.
//   - StartReplicas starts several replicas over one etcd store, which the
//     embedetcd package runs in-process; etcd is only paid for when asked.
//
// Its API speaks only in client, gen (pb), grpc and standard types, so that tests of
// packages that must not import internal/ or server/ (client/,
// interceptors/, examples/) can use it. It is the one bridge for tests: it
// may import internal/authority, internal/storage (and its bolt and etcd
// packages: the etcd client, not its server) and server/, besides client/,
// gen/, grpc and the standard library. Production code must not import
// it. Its test imports_test.go keeps client/ and interceptors/ (their
// tests included) from importing internal/ or server/ directly.
package authoritytest
