package interceptors_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/interceptors"
)

var (
	errRevoked = fmt.Errorf("session ses_alice was revoked: %w", client.ErrSessionRevoked)
	errBanned  = &client.BanError{Reason: pb.ErrorReason_USER_BANNED, BanID: "ban_1"}
)

// openOutput opens a StreamingOutputCall and waits for its first message,
// so the stream is admitted and tracked when it returns.
func openOutput(t *testing.T, c testgrpc.TestServiceClient, ctx context.Context) testgrpc.TestService_StreamingOutputCallClient {
	t.Helper()
	st, err := c.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatalf("first message: %v", err)
	}
	return st
}

// waitUntracked fails unless the stream is untracked in time.
func waitUntracked(t *testing.T, ts *trackedStream) {
	t.Helper()
	select {
	case <-ts.untracked:
	case <-time.After(time.Minute):
		t.Fatal("the stream was not untracked")
	}
}

// TestStreamCutOff: when the checker cancels a tracked stream, the RPC
// ends with the reason's status whatever the handler returns, the client
// having sent nothing, and the stream is untracked.
func TestStreamCutOff(t *testing.T) {
	for name, end := range map[string]func(context.Context) error{
		"handler returns nil":           func(context.Context) error { return nil },
		"handler returns ctx.Err()":     func(ctx context.Context) error { return ctx.Err() },
		"handler returns the cause":     context.Cause,
		"handler returns its own error": func(context.Context) error { return errors.New("feed closed") },
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeChecker()
			f.login("tok-alice", "alice", "")
			handlerCause := make(chan error, 1)
			c := serve(t, f, &testService{output: func(_ *testgrpc.StreamingOutputCallRequest, ss testgrpc.TestService_StreamingOutputCallServer) error {
				if err := ss.Send(&testgrpc.StreamingOutputCallResponse{}); err != nil {
					return err
				}
				<-ss.Context().Done()
				handlerCause <- context.Cause(ss.Context())
				return end(ss.Context())
			}}, nil)
			st := openOutput(t, c, withTimeout(t, bearer("tok-alice")))
			ts := f.nextTracked(t)
			ts.cancel(errBanned)
			_, err := st.Recv()
			if info := wantStatus(t, err, codes.PermissionDenied, "USER_BANNED"); info.GetMetadata()["ban_id"] != "ban_1" {
				t.Fatalf("metadata %v, want ban_id ban_1", info.GetMetadata())
			}
			if cause := <-handlerCause; !errors.Is(cause, client.ErrUserBanned) {
				t.Fatalf("the handler's context was cancelled with %v, want the checker's reason", cause)
			}
			waitUntracked(t, ts)
		})
	}
}

// TestBidiStreamCutOff: a bidi handler that receives in a goroutine and
// watches its context ends while the client sends nothing.
func TestBidiStreamCutOff(t *testing.T) {
	f := newFakeChecker()
	f.login("tok-alice", "alice", "")
	c := serve(t, f, &testService{duplex: func(ss testgrpc.TestService_FullDuplexCallServer) error {
		in := make(chan error, 1)
		go func() {
			for {
				if _, err := ss.Recv(); err != nil {
					in <- err
					return
				}
			}
		}()
		select {
		case err := <-in:
			return err
		case <-ss.Context().Done():
			return ss.Context().Err()
		}
	}}, nil)
	st, err := c.FullDuplexCall(withTimeout(t, bearer("tok-alice")))
	if err != nil {
		t.Fatal(err)
	}
	ts := f.nextTracked(t)
	ts.cancel(errRevoked)
	_, err = st.Recv()
	wantStatus(t, err, codes.Unauthenticated, "SESSION_REVOKED")
	waitUntracked(t, ts)
}

// TestNaiveHandlerEndsAtItsNextMessage: a handler that ignores its
// context and loops on Recv/Send gets the reason's status from its next
// RecvMsg, and the RPC ends with it.
func TestNaiveHandlerEndsAtItsNextMessage(t *testing.T) {
	f := newFakeChecker()
	f.login("tok-alice", "alice", "")
	recvErr := make(chan error, 1)
	c := serve(t, f, &testService{duplex: func(ss testgrpc.TestService_FullDuplexCallServer) error {
		for {
			if _, err := ss.Recv(); err != nil {
				recvErr <- err
				return err
			}
			if err := ss.Send(&testgrpc.StreamingOutputCallResponse{}); err != nil {
				return err
			}
		}
	}}, nil)
	st, err := c.FullDuplexCall(withTimeout(t, bearer("tok-alice")))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&testgrpc.StreamingOutputCallRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	f.nextTracked(t).cancel(errRevoked)
	if err := st.Send(&testgrpc.StreamingOutputCallRequest{}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, <-recvErr, codes.Unauthenticated, "SESSION_REVOKED")
	_, err = st.Recv()
	wantStatus(t, err, codes.Unauthenticated, "SESSION_REVOKED")
}

// TestSendAfterCutOffFails: a handler that keeps sending is stopped by its
// next SendMsg.
func TestSendAfterCutOffFails(t *testing.T) {
	f := newFakeChecker()
	f.login("tok-alice", "alice", "")
	sendErr := make(chan error, 1)
	cut := make(chan struct{})
	c := serve(t, f, &testService{output: func(_ *testgrpc.StreamingOutputCallRequest, ss testgrpc.TestService_StreamingOutputCallServer) error {
		if err := ss.Send(&testgrpc.StreamingOutputCallResponse{}); err != nil {
			return err
		}
		<-cut
		err := ss.Send(&testgrpc.StreamingOutputCallResponse{})
		sendErr <- err
		return nil
	}}, nil)
	st := openOutput(t, c, withTimeout(t, bearer("tok-alice")))
	f.nextTracked(t).cancel(errRevoked)
	close(cut)
	wantStatus(t, <-sendErr, codes.Unauthenticated, "SESSION_REVOKED")
	_, err := st.Recv()
	wantStatus(t, err, codes.Unauthenticated, "SESSION_REVOKED")
}

func TestFirstReasonWinsAndNilIsRevoked(t *testing.T) {
	for name, c := range map[string]struct {
		reasons []error
		code    codes.Code
		reason  string
	}{
		"first wins": {[]error{client.ErrMirrorStale, errRevoked}, codes.Unavailable, "MIRROR_STALE"},
		"nil":        {[]error{nil}, codes.Unauthenticated, "SESSION_REVOKED"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeChecker()
			f.login("tok-alice", "alice", "")
			cl := serve(t, f, &testService{output: func(_ *testgrpc.StreamingOutputCallRequest, ss testgrpc.TestService_StreamingOutputCallServer) error {
				if err := ss.Send(&testgrpc.StreamingOutputCallResponse{}); err != nil {
					return err
				}
				<-ss.Context().Done()
				return nil
			}}, nil)
			st := openOutput(t, cl, withTimeout(t, bearer("tok-alice")))
			ts := f.nextTracked(t)
			for _, r := range c.reasons {
				ts.cancel(r)
			}
			_, err := st.Recv()
			wantStatus(t, err, c.code, c.reason)
		})
	}
}

// TestStreamEndsNormally: a stream that ends by itself is untracked and
// keeps its own result; a later cancel is harmless.
func TestStreamEndsNormally(t *testing.T) {
	f := newFakeChecker()
	f.login("tok-alice", "alice", "")
	c := serve(t, f, &testService{output: func(_ *testgrpc.StreamingOutputCallRequest, ss testgrpc.TestService_StreamingOutputCallServer) error {
		return ss.Send(&testgrpc.StreamingOutputCallResponse{})
	}}, nil)
	st := openOutput(t, c, withTimeout(t, bearer("tok-alice")))
	if _, err := st.Recv(); err != io.EOF {
		t.Fatalf("Recv = %v, want io.EOF", err)
	}
	ts := f.nextTracked(t)
	waitUntracked(t, ts)
	ts.cancel(errRevoked)
}

// TestClientLeavesFirst: the client cancelling is not a cut-off; the
// stream is untracked.
func TestClientLeavesFirst(t *testing.T) {
	f := newFakeChecker()
	f.login("tok-alice", "alice", "")
	done := make(chan error, 1)
	c := serve(t, f, &testService{output: func(_ *testgrpc.StreamingOutputCallRequest, ss testgrpc.TestService_StreamingOutputCallServer) error {
		if err := ss.Send(&testgrpc.StreamingOutputCallResponse{}); err != nil {
			return err
		}
		<-ss.Context().Done()
		done <- context.Cause(ss.Context())
		return ss.Context().Err()
	}}, nil)
	ctx, cancel := context.WithCancel(withTimeout(t, bearer("tok-alice")))
	openOutput(t, c, ctx)
	ts := f.nextTracked(t)
	cancel()
	if cause := <-done; !errors.Is(cause, context.Canceled) {
		t.Fatalf("cause %v, want context.Canceled", cause)
	}
	waitUntracked(t, ts)
}

func TestTrackInput(t *testing.T) {
	for _, c := range []struct {
		name   string
		md     []string
		device string
	}{
		{"device from metadata", []string{"x-device-id", "tablet-7"}, "tablet-7"},
		// The session carries the token's did for the checker.
		{"no device in the request", nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeChecker()
			want := f.login("tok-alice", "alice", "phone-1")
			var inHandler *client.Session
			cl := serve(t, f, &testService{output: func(_ *testgrpc.StreamingOutputCallRequest, ss testgrpc.TestService_StreamingOutputCallServer) error {
				inHandler, _ = interceptors.SessionFromContext(ss.Context())
				return ss.Send(&testgrpc.StreamingOutputCallResponse{})
			}}, []interceptors.Option{
				interceptors.WithDeviceIDMetadata("x-device-id"),
				interceptors.WithCapabilities(map[string]string{testgrpc.TestService_StreamingOutputCall_FullMethodName: "chat"}),
			})
			ctx := metadata.AppendToOutgoingContext(withTimeout(t, bearer("tok-alice")), c.md...)
			openOutput(t, cl, ctx)
			ts := f.nextTracked(t)
			if ts.session != want || inHandler != want || ts.in.DeviceID != c.device || ts.in.ClientIP != (netip.Addr{}) {
				t.Fatalf("tracked %+v (handler saw %+v), want session %+v device %q", ts, inHandler, want, c.device)
			}
			if got := f.lastCheck(t).in; got.Capability != "chat" {
				t.Fatalf("checked with %+v, want capability chat", got)
			}
		})
	}
}

func TestStreamRefusedAtOpen(t *testing.T) {
	f := newFakeChecker()
	f.refuseWith("tok-stale", client.ErrMirrorStale)
	var called atomic.Bool
	c := serve(t, f, &testService{output: func(*testgrpc.StreamingOutputCallRequest, testgrpc.TestService_StreamingOutputCallServer) error {
		called.Store(true)
		return nil
	}}, nil)
	for tok, reason := range map[string]string{"": "TOKEN_INVALID", "tok-stale": "MIRROR_STALE"} {
		ctx := withTimeout(t, context.Background())
		if tok != "" {
			ctx = withTimeout(t, bearer(tok))
		}
		st, err := c.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{})
		if err == nil {
			_, err = st.Recv()
		}
		info, _ := statusOf(err)
		if info.GetReason() != reason {
			t.Fatalf("token %q: %v, want %s", tok, err, reason)
		}
	}
	if called.Load() || f.numStreams() != 0 {
		t.Fatalf("a refused stream reached the handler (%v) or was tracked (%d)", called.Load(), f.numStreams())
	}
}

func TestPublicStreamIsNotTracked(t *testing.T) {
	f := newFakeChecker()
	c := serve(t, f, &testService{output: func(_ *testgrpc.StreamingOutputCallRequest, ss testgrpc.TestService_StreamingOutputCallServer) error {
		if _, ok := interceptors.SessionFromContext(ss.Context()); ok {
			return errors.New("a public stream has a session")
		}
		return ss.Send(&testgrpc.StreamingOutputCallResponse{})
	}}, []interceptors.Option{interceptors.WithPublicMethods(testgrpc.TestService_StreamingOutputCall_FullMethodName)})
	st := openOutput(t, c, withTimeout(t, context.Background()))
	if _, err := st.Recv(); err != io.EOF {
		t.Fatalf("Recv = %v", err)
	}
	if n := f.numChecks(); n != 0 || f.numStreams() != 0 {
		t.Fatalf("public stream: %d checks, %d tracked", n, f.numStreams())
	}
}

// TestPanickingHandlerIsUntracked: the stream is untracked even when its
// handler panics (an outer recovery interceptor turns the panic into a
// status).
func TestPanickingHandlerIsUntracked(t *testing.T) {
	f := newFakeChecker()
	f.login("tok-alice", "alice", "")
	stream := interceptors.StreamServerInterceptor(f)
	recovered := make(chan any, 1)
	g := grpc.NewServer(grpc.ChainStreamInterceptor(
		func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
			defer func() {
				if p := recover(); p != nil {
					recovered <- p
					err = status.Error(codes.Internal, "panic")
				}
			}()
			return h(srv, ss)
		}, stream))
	testgrpc.RegisterTestServiceServer(g, &testService{output: func(*testgrpc.StreamingOutputCallRequest, testgrpc.TestService_StreamingOutputCallServer) error {
		panic("boom")
	}})
	lis := bufconn.Listen(1 << 20)
	go g.Serve(lis)
	defer g.Stop()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st, err := testgrpc.NewTestServiceClient(conn).StreamingOutputCall(withTimeout(t, bearer("tok-alice")), &testgrpc.StreamingOutputCallRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); status.Code(err) != codes.Internal {
		t.Fatalf("Recv = %v, want Internal", err)
	}
	<-recovered
	waitUntracked(t, f.nextTracked(t))
}

// TestBannedBetweenCheckAndTrack: when Track cancels at once, the handler
// starts with its context done and the RPC ends with the ban.
func TestBannedBetweenCheckAndTrack(t *testing.T) {
	f := newFakeChecker()
	f.login("tok-alice", "alice", "")
	f.refuseOnTrack = errBanned
	c := serve(t, f, &testService{output: func(_ *testgrpc.StreamingOutputCallRequest, ss testgrpc.TestService_StreamingOutputCallServer) error {
		<-ss.Context().Done()
		return nil
	}}, nil)
	st, err := c.StreamingOutputCall(withTimeout(t, bearer("tok-alice")), &testgrpc.StreamingOutputCallRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Recv()
	wantStatus(t, err, codes.PermissionDenied, "USER_BANNED")
	waitUntracked(t, f.nextTracked(t))
}
