package interceptors

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"

	"github.com/portcullis-dev/portcullis/client"
)

// streamInterceptor admits a stream as the unary interceptor admits a
// call, then keeps it under watch: when the checker reports (through the cancel function given to Track) that
// a ban or revocation now applies to the stream, the handler's Context()
// is cancelled with that reason, its further SendMsg and RecvMsg fail, and
// the RPC ends with the reason's status (client.Status) whatever the
// handler returns. The stream is untracked when the handler returns.
func (a *authenticator) streamInterceptor() grpc.StreamServerInterceptor {
	return selector.StreamServerInterceptor(a.stream, a)
}

// errEnded is the reason given when a checker cancels a stream without
// one.
var errEnded = fmt.Errorf("%w: the session no longer admits this stream", client.ErrSessionRevoked)

func (a *authenticator) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	var ls *liveStream
	authFn := func(ctx context.Context) (context.Context, error) {
		ctx, ci, err := a.check(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		ls = &liveStream{}
		ls.ctx, ls.cancel = context.WithCancelCause(ctx)
		// Track may call ls.end before it returns (a ban applied since the
		// check): the handler then starts with its context done.
		ls.untrack = a.checker.Track(ci.session, ci.in, ls.end)
		return ls.ctx, nil
	}
	defer func() { // deferred, so that a panicking handler is untracked too
		if ls != nil {
			ls.untrack()
			ls.cancel(nil)
		}
	}()
	err := auth.StreamServerInterceptor(authFn)(srv, ss, info, func(srv any, s grpc.ServerStream) error {
		if ls == nil { // the service overrode the auth function
			return handler(srv, s)
		}
		ls.ServerStream = s
		return handler(srv, ls)
	})
	if ls == nil {
		return err
	}
	if cut := ls.cut.Load(); cut != nil {
		s, _ := SessionFromContext(ls.ctx)
		a.cfg.log.InfoContext(ls.ctx, "portcullis ended a stream", "method", info.FullMethod,
			"session_id", s.SessionID, "user_id", s.UserID, "tenant_id", s.TenantID, "reason", cut.err)
		return client.Status(cut.err)
	}
	return err
}

// liveStream is an admitted stream under watch.
type liveStream struct {
	grpc.ServerStream
	ctx     context.Context
	cancel  context.CancelCauseFunc
	untrack func()
	cut     atomic.Pointer[streamCut] // set once, by end
}

type streamCut struct{ err error }

// end is the cancel function given to Checker.Track. It may run on any
// goroutine, more than once; the first reason wins.
func (ls *liveStream) end(reason error) {
	if reason == nil {
		reason = errEnded
	}
	if ls.cut.CompareAndSwap(nil, &streamCut{err: reason}) {
		ls.cancel(reason)
	}
}

func (ls *liveStream) Context() context.Context { return ls.ctx }

// SendMsg refuses to send on a stream that has been cut off.
func (ls *liveStream) SendMsg(m any) error {
	if cut := ls.cut.Load(); cut != nil {
		return client.Status(cut.err)
	}
	return ls.ServerStream.SendMsg(m)
}

// RecvMsg refuses to deliver a message that arrives after the stream was
// cut off.
func (ls *liveStream) RecvMsg(m any) error {
	if cut := ls.cut.Load(); cut != nil {
		return client.Status(cut.err)
	}
	err := ls.ServerStream.RecvMsg(m)
	if cut := ls.cut.Load(); cut != nil {
		return client.Status(cut.err)
	}
	return err
}
