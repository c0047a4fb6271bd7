package interceptors

import (
	"context"
	"net/netip"

	"github.com/portcullis-dev/portcullis/client"
)

// Checker decides whether a call may proceed and watches open streams.
// *client.Mirror implements it; tests may use a fake.
type Checker interface {
	// Check verifies token and returns its session, or an error that
	// client.Status turns into the caller's status (a ban, a bad or
	// expired token, a revoked session, a stale mirror).
	Check(ctx context.Context, token string, in client.CheckInput) (*client.Session, error)
	// Track registers an open stream of session s, admitted by Check with
	// in (its client IP, the device it named, its method's capability).
	// When a ban or revocation applies to the stream, now or later (a
	// capability ban on in.Capability included), the checker calls cancel
	// once with the reason (an error client.Status understands), possibly
	// before Track returns; cancel does not block. untrack, called when
	// the stream ends, forgets it.
	Track(s *client.Session, in client.CheckInput, cancel func(error)) (untrack func())
}

// *client.Mirror is the production Checker.
var _ Checker = (*client.Mirror)(nil)

// callInfo is what an admitted call carries in its context.
type callInfo struct {
	session *client.Session
	in      client.CheckInput // what it was checked with (DeviceID from metadata; "" = the token's did claim)
}

type callInfoKey struct{}

// SessionFromContext returns the verified session of the call whose
// context ctx is (or derives from). It is false in public methods and
// outside the interceptors. For a token of an external OIDC issuer, the
// session's Issuer is set, UserID and SessionID come from the issuer's
// user and session claims, TokenID is the jti and Claims the token's JSON
// payload (see client.Session).
func SessionFromContext(ctx context.Context) (*client.Session, bool) {
	ci, ok := ctx.Value(callInfoKey{}).(*callInfo)
	if !ok || ci.session == nil {
		return nil, false
	}
	return ci.session, true
}

// ClientIPFromContext returns the client IP address the interceptors
// checked for this call (the peer, or the forwarded address when the peer
// is a trusted proxy). It is false in public methods and when the
// transport has no IP address (for example an in-memory listener).
func ClientIPFromContext(ctx context.Context) (netip.Addr, bool) {
	ci, ok := ctx.Value(callInfoKey{}).(*callInfo)
	if !ok || !ci.in.ClientIP.IsValid() {
		return netip.Addr{}, false
	}
	return ci.in.ClientIP, true
}
