// Package serveproc runs `portcullis serve` as a child process, for the
// suites under test/ that run it as operators do and kill it at random
// moments (crash, robustness, signals):
// the binary is built once per test binary, without the race detector (it
// is the process under test, not the test), and each process is started
// without the test's PORTCULLIS_* variables, dies with the test binary,
// and keeps the tail of its log for failure messages.
//
// It imports the standard library only; only tests import it.
package serveproc
