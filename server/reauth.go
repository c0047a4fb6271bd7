package server

import (
	"context"
	"fmt"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/grpc"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

// reauthenticate re-checks the API key of a long-lived call (a Watch
// stream) against the store: a key revoked or expired since the stream
// opened ends it with API_KEY_INVALID, and the refusal is audited like any
// denied call. Calls without an API key (none reach here today) pass.
func (s *Server) reauthenticate(ctx context.Context) error {
	if _, ok := ctx.Value(callerKey{}).(storage.APIKey); !ok {
		return nil
	}
	method, _ := grpc.Method(ctx)
	secret, err := auth.AuthFromMD(ctx, "bearer")
	if err == nil {
		var key storage.APIKey
		if key, err = s.auth.Authenticate(ctx, secret); err == nil {
			if r := rules[method]; r.scope == "" || authority.HasScope(key, r.scope) {
				return nil
			}
			err = authority.ErrAPIKeyInvalid
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s.denied.record(context.WithoutCancel(ctx), actorFrom(ctx), peerIP(ctx), method, "API key revoked or expired during the stream", false)
	return fmt.Errorf("%w: the key was revoked or expired while the stream was open", authority.ErrAPIKeyInvalid)
}
