package transmitter

import (
	"errors"
	"fmt"

	"github.com/portcullis-dev/portcullis/internal/authority"
)

// Sentinels of the transmitter; server/errors.go maps each onto the error
// catalogue. Invalid requests are *authority.FieldError (invalid
// argument); a stream whose position the event log no longer holds fails
// with an error matching storage.ErrCompacted.
var (
	// ErrStreamNotFound: no such stream, or one the caller's API key does
	// not own (the two are not told apart).
	ErrStreamNotFound = errors.New("stream not found")
	// ErrVerificationTooSoon: a verification request came sooner than the
	// stream's min_verification_interval after the previous one.
	ErrVerificationTooSoon = errors.New("verification requested sooner than min_verification_interval")
	// ErrTooManyStreams: the caller's key has MaxStreamsPerKey streams.
	ErrTooManyStreams = errors.New("too many streams for one API key")
)

func invalid(field, format string, args ...any) error {
	return &authority.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

func notFound(id string) error { return fmt.Errorf("%w: %.100q", ErrStreamNotFound, id) }
