package client

import (
	"errors"
	"io"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestStreamErrors: a stream's normal end stays io.EOF (callers compare
// with ==); a status becomes an *Error.
func TestStreamErrors(t *testing.T) {
	if err := convertStreamErr(io.EOF); err != io.EOF {
		t.Fatalf("io.EOF became %v", err)
	}
	if err := convertStreamErr(nil); err != nil {
		t.Fatalf("nil became %v", err)
	}
	var e *Error
	if err := convertStreamErr(status.Error(codes.Unavailable, "x")); !errors.As(err, &e) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("status became %v", err)
	}
}
