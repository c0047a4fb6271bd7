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
//	m := client.NewMirror(watcher, client.MirrorOptions{Clock: a.Clock().Now})
//
// What it owns: the file (in t.TempDir(); opened with bolttest, so when
// the test ends the file is closed and checked, bbolt's page check and the
// store's invariants, failing the test on any inconsistency), the
// authority's signing key and bootstrap admin key (AdminKey), the server
// and its listeners, and every client Dial returned, which it closes when
// the authority stops. Mirrors and services the test starts are the
// test's.
//
// Its API speaks only in client, grpc and standard types, so that tests of
// packages that must not import internal/ or server/ (client/,
// interceptors/, examples/) can use it. It is the one bridge for tests: it
// may import internal/authority, internal/storage (and its bolt and
// bolttest packages) and server/, besides client/, grpc and the standard
// library. Production code must not import it.
package authoritytest
