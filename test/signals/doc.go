// Package signals holds the Shared Signals end-to-end tests: two real
// `portcullis serve` processes, A transmitting (internal/transmitter) and
// B receiving (internal/receiver), B added as a receiver of A with an API
// key of A with scope signals. A ban, an unban and a session revocation
// at A must become, through SSF push and poll delivery, a ban, its lift
// and a revocation at B; and two authorities receiving from each other
// must not ban each other's echoes forever.
//
// It has only tests. They build the binary from cmd/portcullis and talk to
// both processes as an operator would, through client/ and gen/.
package signals
