// Package crash holds the crash suite (issue 8): it runs `portcullis serve`
// as a real child process, drives writes at it, kills it with SIGKILL at
// random moments, restarts it on the same data directory and checks that
// no acknowledged write was lost, that the bbolt file stays consistent and
// that the event log has neither gaps nor duplicates.
//
// The suite runs in `go test ./...` with a bounded number of cycles
// (PORTCULLIS_CRASH_CYCLES, default 10; PORTCULLIS_CRASH_SEED fixes the
// random kill schedule).
package crash
