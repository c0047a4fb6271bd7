// Package signals holds the Shared Signals end-to-end tests: real
// `portcullis serve` processes (harness_test.go), A transmitting
// (internal/transmitter) and B receiving (internal/receiver) with an API
// key of A with scope signals, by push and by poll. A ban, a lift and a
// session revocation at A must become a ban, its lift and a revocation at
// B (signals_test.go), survive A's or B's crash in a burst, on bbolt and
// on etcd (burst_test.go), fall back to the user's sessions when B cannot
// name A's session, and two authorities receiving from each other must
// not ban each other's echoes forever (receive_test.go). With A as two
// replicas over etcd, B must get each SET once, and all of them when the
// replica delivering stops (replicas_test.go).
//
// It has only tests. They build the binary from cmd/portcullis and talk to
// the processes as an operator would, through client/ and gen/.
package signals
