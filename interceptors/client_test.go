package interceptors_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/portcullis-dev/portcullis/client"
	"github.com/portcullis-dev/portcullis/interceptors"
)

// whoCalls serves a checker that knows alice and bob and answers UnaryCall
// and StreamingOutputCall with the caller's user id in the username field.
func whoCalls(t *testing.T, src interceptors.TokenSource) (testgrpc.TestServiceClient, *fakeChecker) {
	t.Helper()
	f := newFakeChecker()
	f.login("tok-alice", "alice", "")
	f.login("tok-bob", "bob", "")
	svc := &testService{
		unary: func(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
			s, _ := interceptors.SessionFromContext(ctx)
			return &testgrpc.SimpleResponse{Username: s.UserID}, nil
		},
		output: func(_ *testgrpc.StreamingOutputCallRequest, ss testgrpc.TestService_StreamingOutputCallServer) error {
			s, _ := interceptors.SessionFromContext(ss.Context())
			ss.SetTrailer(metadata.Pairs("user", s.UserID))
			return nil
		},
	}
	c := serve(t, f, svc, nil,
		grpc.WithUnaryInterceptor(interceptors.UnaryClientInterceptor(src)),
		grpc.WithStreamInterceptor(interceptors.StreamClientInterceptor(src)))
	return c, f
}

func unaryUser(t *testing.T, c testgrpc.TestServiceClient, ctx context.Context) (string, error) {
	t.Helper()
	r, err := c.UnaryCall(withTimeout(t, ctx), &testgrpc.SimpleRequest{})
	return r.GetUsername(), err
}

func streamUser(t *testing.T, c testgrpc.TestServiceClient, ctx context.Context) (string, error) {
	t.Helper()
	st, err := c.StreamingOutputCall(withTimeout(t, ctx), &testgrpc.StreamingOutputCallRequest{})
	if err != nil {
		return "", err
	}
	if _, err := st.Recv(); err != io.EOF {
		return "", err
	}
	return st.Trailer().Get("user")[0], nil
}

func TestClientInterceptorAttachesTheToken(t *testing.T) {
	c, _ := whoCalls(t, func(context.Context) (string, error) { return "tok-alice", nil })
	for name, call := range map[string]func(*testing.T, testgrpc.TestServiceClient, context.Context) (string, error){
		"unary": unaryUser, "stream": streamUser,
	} {
		if u, err := call(t, c, context.Background()); err != nil || u != "alice" {
			t.Fatalf("%s: user %q, %v; want alice", name, u, err)
		}
		// A token in the context wins over the source.
		if u, err := call(t, c, interceptors.WithToken(context.Background(), "tok-bob")); err != nil || u != "bob" {
			t.Fatalf("%s with WithToken: user %q, %v; want bob", name, u, err)
		}
	}
}

func TestClientInterceptorTokenSourceFails(t *testing.T) {
	errLoggedOut := errors.New("logged out")
	c, f := whoCalls(t, func(context.Context) (string, error) { return "", errLoggedOut })
	if _, err := unaryUser(t, c, context.Background()); !errors.Is(err, errLoggedOut) {
		t.Fatalf("unary: %v, want the source's error", err)
	}
	if _, err := streamUser(t, c, context.Background()); !errors.Is(err, errLoggedOut) {
		t.Fatalf("stream: %v, want the source's error", err)
	}
	if n := f.numChecks(); n != 0 {
		t.Fatalf("%d calls reached the server", n)
	}
	// A status from the source (say, a failed refresh) keeps its code.
	c, _ = whoCalls(t, func(context.Context) (string, error) { return "", client.Status(client.ErrSessionRevoked) })
	_, err := unaryUser(t, c, context.Background())
	wantStatus(t, err, codes.Unauthenticated, "SESSION_REVOKED")
}

func TestClientInterceptorWithoutToken(t *testing.T) {
	for name, src := range map[string]interceptors.TokenSource{
		"nil source":  nil,
		"empty token": func(context.Context) (string, error) { return "", nil },
	} {
		c, _ := whoCalls(t, src)
		_, err := unaryUser(t, c, context.Background())
		if info, code := statusOf(err); code != codes.Unauthenticated || info.GetReason() != "TOKEN_INVALID" {
			t.Fatalf("%s: %v, want Unauthenticated TOKEN_INVALID", name, err)
		}
	}
}

func TestWithTokenReplaces(t *testing.T) {
	ctx := metadata.AppendToOutgoingContext(bearer("tok-old"), "x-request-id", "r1")
	ctx = interceptors.WithToken(ctx, "tok-new")
	md, _ := metadata.FromOutgoingContext(ctx)
	if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer tok-new" {
		t.Fatalf("authorization %q", got)
	}
	if got := md.Get("x-request-id"); len(got) != 1 || got[0] != "r1" {
		t.Fatalf("other metadata lost: %v", md)
	}
}

// TestForwardTheCallersToken: a front service calls a back service with
// its caller's token; the back service sees the same user.
func TestForwardTheCallersToken(t *testing.T) {
	back, _ := whoCalls(t, nil)
	f := newFakeChecker()
	f.login("tok-alice", "alice", "")
	front := serve(t, f, &testService{unary: func(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
		tok, ok := interceptors.TokenFromIncoming(ctx)
		if !ok {
			return nil, errors.New("no incoming token")
		}
		return back.UnaryCall(interceptors.WithToken(ctx, tok), &testgrpc.SimpleRequest{})
	}}, nil)
	if u, err := unaryUser(t, front, bearer("tok-alice")); err != nil || u != "alice" {
		t.Fatalf("user %q, %v; want alice", u, err)
	}
	if _, ok := interceptors.TokenFromIncoming(context.Background()); ok {
		t.Fatal("a token outside any call")
	}
}
