// Package crash holds the crash suite: it runs `portcullis serve`
// as a real child process, drives writes at it, kills it with SIGKILL at
// random moments, restarts it on the same data directory and checks that
// no acknowledged write was lost, that the bbolt file stays consistent and
// that the event log has neither gaps nor duplicates.
//
// The suite runs in `go test ./...` with a bounded number of cycles
// (PORTCULLIS_CRASH_CYCLES, default 10; PORTCULLIS_CRASH_SEED fixes the
// random kill schedule).
//
// It has only tests. They build the binary from cmd/portcullis and talk to
// it as a service would, through client/ and gen/, so that what they prove
// holds for the process as shipped; the one exception is
// internal/storage/bolt, whose Check verifies the file after every kill.
package crash
