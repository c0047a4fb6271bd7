package interceptors

import (
	"context"
	"fmt"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/portcullis-dev/portcullis/client"
)

// ServerOptions returns the server options that protect a gRPC server
// with c (in production the *client.Mirror of client.StartMirror): a unary
// and a stream interceptor built from the one option set. A unary call is
// admitted only if c accepts its bearer token for the caller's IP address,
// device and the method's capability; a stream is admitted likewise, then
// kept under watch (stream.go). Methods named by WithPublicMethods skip
// both.
//
// They chain with a service's own interceptors: grpc.NewServer runs every
// grpc.ChainUnaryInterceptor and grpc.ChainStreamInterceptor option it is
// given, in order, so put these where the check belongs (after a recovery
// interceptor, before those that need the session).
//
// A configuration mistake is an error here, at start-up, rather than a
// refused call later (validate.go): a capability name no ban can match, an
// invalid trusted proxy, strict methods with a checker that cannot catch
// up, and, when WithServices gives the service descriptors, a method name
// that no service has.
func ServerOptions(c Checker, opts ...Option) ([]grpc.ServerOption, error) {
	a, err := newAuthenticator(c, opts)
	if err != nil {
		return nil, err
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(a.unaryInterceptor()),
		grpc.ChainStreamInterceptor(a.streamInterceptor()),
	}, nil
}

// authenticator is the check shared by the unary and stream interceptors.
type authenticator struct {
	checker Checker
	cfg     *config
}

func newAuthenticator(c Checker, opts []Option) (*authenticator, error) {
	cfg := newConfig(opts)
	if err := cfg.validate(c); err != nil {
		return nil, err
	}
	return &authenticator{checker: c, cfg: cfg}, nil
}

func (a *authenticator) unaryInterceptor() grpc.UnaryServerInterceptor {
	return selector.UnaryServerInterceptor(auth.UnaryServerInterceptor(a.authenticate), a)
}

// Match implements selector.Matcher: every method but the public ones is
// checked.
func (a *authenticator) Match(_ context.Context, c interceptors.CallMeta) bool {
	_, public := a.cfg.public[methodKey{c.Service, c.Method}]
	return !public
}

// authenticate is the auth.AuthFunc of unary calls.
func (a *authenticator) authenticate(ctx context.Context) (context.Context, error) {
	method, _ := grpc.Method(ctx)
	ctx, _, err := a.check(ctx, method)
	return ctx, err
}

// check runs the Checker for a call of method and returns a context
// carrying the session and client IP, and the device the call was checked
// with. Its errors are statuses for the caller.
func (a *authenticator) check(ctx context.Context, method string) (context.Context, *callInfo, error) {
	in := client.CheckInput{
		ClientIP:   a.cfg.clientIP(ctx),
		Capability: a.cfg.capabilities[method],
	}
	if a.cfg.deviceKey != "" {
		if v := metadata.ValueFromIncomingContext(ctx, a.cfg.deviceKey); len(v) > 0 {
			in.DeviceID = v[0]
		}
	}
	tok, err := auth.AuthFromMD(ctx, "bearer")
	if err != nil {
		return nil, nil, a.refuse(ctx, method, in, fmt.Errorf(
			`%w: no access token; send it as "authorization: Bearer <token>"`, client.ErrTokenInvalid))
	}
	s, err := a.checkWith(ctx, method, tok, in) // consistency.go
	if err != nil {
		return nil, nil, a.refuse(ctx, method, in, err)
	}
	ci := &callInfo{session: s, in: in}
	return context.WithValue(ctx, callInfoKey{}, ci), ci, nil
}

func (a *authenticator) refuse(ctx context.Context, method string, in client.CheckInput, err error) error {
	a.cfg.log.DebugContext(ctx, "portcullis refused a call", "method", method,
		"client_ip", in.ClientIP, "device_id", in.DeviceID, "capability", in.Capability, "error", err)
	return client.Status(err)
}
