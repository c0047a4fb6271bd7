// Package robustness is the robustness harness, built the way
// etcd's own tests/robustness proves etcd: run the system under a mixed
// load from many concurrent clients, inject faults at random moments,
// record every operation with its invocation and response times and its
// result, and check the history afterwards.
//
// What it owns:
//
//   - the history (history.go): every client operation, as porcupine
//     operations partitioned per user so that each check stays small;
//   - the model (model.go): one porcupine model per user that composes a
//     ban's lifecycle (CreateBan / LiftBan / CheckBan) with the user's
//     refresh-token families (CreateSession / RefreshSession /
//     RevokeSession / VerifySession: exactly one successful rotation per
//     token, reuse of a superseded token = theft, family revoked), since a
//     full ban revokes the user's sessions in the same write;
//   - the watch checker (watchcheck.go): the logs of mirrors and raw Watch
//     subscribers against etcd's watch guarantees (ordered, unique,
//     atomic, reliable, resumable);
//   - the report (report.go) that both `make test` (small) and
//     `make robustness` (PORTCULLIS_ROBUSTNESS=long) print.
//
// The checkers are plain code with tests that feed them deliberately
// broken histories (a lost acknowledged ban, a reordered or duplicated
// watch log, a gap) and see them reported. The harness itself is in the
// _test.go files: the bbolt run (a real `portcullis serve` process,
// SIGKILLed and restarted on its file) and the etcd run (three etcd
// members, each the test binary re-executed as one embedded member so
// that it can be SIGKILLed; authority replicas as real processes reaching
// etcd through toxiproxy; faults on members, replicas and links). ROBUSTNESS.md
// at the repository root says what is injected and checked, with the
// figures of the last long run.
//
// It may import client/, gen/, porcupine and toxiproxy; its tests also
// internal/storage/bolt (the file check), test/serveproc (the authority
// processes) and etcd's embed and client packages (the members).
// Nothing imports it.
package robustness
