package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/rpcerr"
)

// writeHTTPError answers what toStatus makes of an error: its reason and
// message in the JSON body, the HTTP status of its gRPC code, and the
// protocol hook's fields and status on top.
func TestWriteHTTPError(t *testing.T) {
	var logged strings.Builder
	s := &Server{log: slog.New(slog.NewTextHandler(&logged, nil))}
	rfc6749 := func(_ pb.ErrorReason, b *HTTPError) int {
		b.Error, b.ErrorDescription = "invalid_request", b.Message
		return 0 // keep the status
	}
	var hookReason pb.ErrorReason
	rfc8935 := func(r pb.ErrorReason, b *HTTPError) int {
		hookReason = r
		b.Err, b.Description = "invalid_key", "unknown kid"
		return http.StatusBadRequest
	}
	for _, c := range []struct {
		name     string
		err      error
		protocol func(pb.ErrorReason, *HTTPError) int
		status   int
		want     HTTPError
	}{
		{"domain sentinel", fmt.Errorf("%w: session ses_1 was revoked (spam)", authority.ErrSessionRevoked), nil,
			http.StatusUnauthorized, HTTPError{Reason: "SESSION_REVOKED", Message: "session revoked: session ses_1 was revoked (spam)"}},
		{"field error", &authority.FieldError{Field: "token", Msg: "is required"}, rfc6749,
			http.StatusBadRequest, HTTPError{Reason: "INVALID_ARGUMENT", Message: "token: is required", Metadata: map[string]string{rpcerr.MetaField: "token"},
				Error: "invalid_request", ErrorDescription: "token: is required"}},
		{"ban", &authority.BanError{Reason: authority.BannedUser, BanID: "ban_1"}, nil,
			http.StatusForbidden, HTTPError{Reason: "USER_BANNED", Message: "user is banned (ban ban_1, permanently)", Metadata: map[string]string{rpcerr.MetaBanID: "ban_1", rpcerr.MetaExpireTime: ""}}},
		{"status built here", rpcerr.New(pb.ErrorReason_API_KEY_INVALID, "send an API key", nil), nil,
			http.StatusUnauthorized, HTTPError{Reason: "API_KEY_INVALID", Message: "send an API key"}},
		{"store unavailable", fmt.Errorf("reading: %w", storage.ErrClosed), nil,
			http.StatusServiceUnavailable, HTTPError{Reason: "UNAVAILABLE", Message: "reading: " + storage.ErrClosed.Error()}},
		{"hook sets status", rpcerr.New(pb.ErrorReason_SET_KEY_INVALID, "no key k1", nil), rfc8935,
			http.StatusBadRequest, HTTPError{Reason: "SET_KEY_INVALID", Message: "no key k1", Err: "invalid_key", Description: "unknown kid"}},
		{"internal", errors.New("bbolt: page 7 corrupt"), nil,
			http.StatusInternalServerError, HTTPError{Reason: "INTERNAL", Message: "internal error; the authority logged the cause"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			s.writeHTTPError(w, httptest.NewRequest(http.MethodPost, "/x", nil), c.err, c.protocol)
			resp := w.Result()
			if resp.StatusCode != c.status {
				t.Errorf("status %d, want %d", resp.StatusCode, c.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			raw, _ := io.ReadAll(resp.Body)
			var got HTTPError
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("body %q: %v", raw, err)
			}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(c.want)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("body %s\nwant %s", gotJSON, wantJSON)
			}
		})
	}
	if hookReason != pb.ErrorReason_SET_KEY_INVALID {
		t.Errorf("the hook was given reason %v, want SET_KEY_INVALID", hookReason)
	}
	// The cause of an internal error is logged, never answered.
	if !strings.Contains(logged.String(), "page 7 corrupt") {
		t.Errorf("internal error not logged: %q", logged.String())
	}
}
