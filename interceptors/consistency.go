package interceptors

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// DefaultStrictTimeout bounds the catch-up of a strict method and the
// authority call of an authority-checked method.
const DefaultStrictTimeout = time.Second

// consistency is how fresh the state a method is checked against must be.
type consistency int

const (
	// local checks against the mirror as it is: no network call; a ban is
	// enforced once the mirror has applied it (typically a few
	// milliseconds after the write). The default.
	local consistency = iota
	// catchUp asks the authority for its current revision (one small RPC,
	// EventService.GetRevision), waits until the mirror has applied it,
	// then checks against the mirror: a ban committed before the call
	// arrived is enforced. A mirror that does not catch up within the
	// strict timeout fails the call with Unavailable / MIRROR_STALE.
	catchUp
	// authority asks the authority's SessionService.VerifySession (the
	// SuperTokens checkDatabase choice): the answer is the authority's own,
	// at the cost of a round trip that does the full check on the
	// authority. The device named in metadata (WithDeviceIDMetadata) is
	// then checked against the mirror as well.
	authority
)

// catchUpChecker is a Checker that can catch up with the authority's
// current revision before a check. *client.Mirror implements it.
type catchUpChecker interface {
	Checker
	// CatchUp returns once the checker has applied every write committed
	// before the call, or fails with an error wrapping
	// client.ErrMirrorStale.
	CatchUp(ctx context.Context) error
}

var _ catchUpChecker = (*client.Mirror)(nil)

type consistencyConfig struct {
	methods  map[string]consistency
	timeout  time.Duration
	sessions pb.SessionServiceClient
}

func (c *consistencyConfig) set(mode consistency, methods []string) {
	if c.methods == nil {
		c.methods = map[string]consistency{}
	}
	for _, m := range methods {
		c.methods[m] = mode
	}
}

// WithStrictMethods makes the named methods (full names) strict:
// before checking, the mirror catches up with the authority's current
// revision, within the strict timeout (WithStrictTimeout), or the call
// fails closed with MIRROR_STALE. Mark strict what must not run for a
// user banned a moment ago (a payment, a payout, an irreversible admin
// action); leave the rest local. The Checker must have a method
// CatchUp(ctx) error (a *client.Mirror has); otherwise ServerOptions fails.
// Repeatable.
func WithStrictMethods(fullMethodNames ...string) Option {
	return func(c *config) { c.consistency.set(catchUp, fullMethodNames) }
}

// WithAuthorityMethods makes the named methods authority-checked: each
// call is checked by sessions.VerifySession (the service's API key needs
// the sessions:read scope), within the strict timeout. An authority that
// cannot be reached fails the call (Unavailable). Repeatable; the last
// sessions client given is used.
func WithAuthorityMethods(sessions pb.SessionServiceClient, fullMethodNames ...string) Option {
	return func(c *config) {
		if sessions == nil {
			c.errs = append(c.errs, errors.New("WithAuthorityMethods: nil SessionServiceClient"))
		}
		c.consistency.sessions = sessions
		c.consistency.set(authority, fullMethodNames)
	}
}

// WithStrictTimeout bounds the catch-up of strict methods and the
// VerifySession call of authority-checked methods (default DefaultStrictTimeout).
func WithStrictTimeout(d time.Duration) Option {
	return func(c *config) { c.consistency.timeout = d }
}

// checkWith checks a call of method with the consistency configured for
// it.
func (a *authenticator) checkWith(ctx context.Context, method, tok string, in client.CheckInput) (*client.Session, error) {
	mode := a.cfg.consistency.methods[method] // nil map: local
	if mode == local {
		return a.checker.Check(ctx, tok, in)
	}
	timeout := a.cfg.consistency.timeout
	if timeout <= 0 {
		timeout = DefaultStrictTimeout
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch mode {
	case catchUp:
		cu, ok := a.checker.(catchUpChecker)
		if !ok {
			return nil, fmt.Errorf("%w: %s is strict but the checker cannot catch up with the authority", client.ErrMirrorStale, method)
		}
		if err := cu.CatchUp(sctx); err != nil {
			return nil, err
		}
		return a.checker.Check(ctx, tok, in)
	case authority:
		req := &pb.VerifySessionRequest{AccessToken: tok, Capability: in.Capability}
		if in.ClientIP.IsValid() {
			req.ClientIp = in.ClientIP.String()
		}
		resp, err := a.cfg.consistency.sessions.VerifySession(sctx, req)
		if err != nil {
			return nil, client.FromStatus(err)
		}
		ps := resp.GetSession()
		s := &client.Session{SessionID: ps.GetSessionId(), TenantID: ps.GetTenantId(), UserID: ps.GetUserId(),
			DeviceID: ps.GetDeviceId(), ExpireTime: resp.GetAccessTokenExpireTime().AsTime()}
		if in.DeviceID != "" {
			// The authority knows the token's device only: a device named
			// in metadata is checked by the mirror.
			if _, err := a.checker.Check(ctx, tok, in); err != nil {
				return nil, err
			}
		}
		return s, nil
	}
	return nil, fmt.Errorf("%w: unknown consistency %d for %s", client.ErrMirrorStale, mode, method)
}
