package interceptors_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/interceptors"
)

// exampleChecker stands in for a *client.Mirror: it admits alice's token,
// says bob's has expired and mallory is banned, and lets the example
// revoke alice's session while her stream is open.
type exampleChecker struct {
	mu      sync.Mutex
	streams map[*client.Session]func(error)
	tracked chan struct{}
}

var alice = &client.Session{SessionID: "ses_1", TenantID: "public", UserID: "alice"}

func (c *exampleChecker) Check(_ context.Context, token string, in client.CheckInput) (*client.Session, error) {
	switch token {
	case "alice-token":
		return alice, nil
	case "bob-token":
		return nil, fmt.Errorf("%w: bob's token expired at 12:15", client.ErrTokenExpired)
	case "mallory-token":
		return nil, &client.BanError{Reason: pb.ErrorReason_USER_BANNED, BanID: "ban_42",
			ExpireTime: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	}
	return nil, fmt.Errorf("%w: unknown token", client.ErrTokenInvalid)
}

func (c *exampleChecker) Track(s *client.Session, _ client.CheckInput, cancel func(error)) func() {
	c.mu.Lock()
	c.streams[s] = cancel
	c.mu.Unlock()
	c.tracked <- struct{}{}
	return func() {
		c.mu.Lock()
		delete(c.streams, s)
		c.mu.Unlock()
	}
}

// revoke is what a mirror does when the authority revokes s.
func (c *exampleChecker) revoke(s *client.Session) {
	c.mu.Lock()
	cancel := c.streams[s]
	c.mu.Unlock()
	cancel(fmt.Errorf("%w: session %s was revoked", client.ErrSessionRevoked, s.SessionID))
}

// feed is a service whose StreamingOutputCall sends the caller a message
// and then waits, as a live feed does, until its context ends.
type feed struct {
	testgrpc.UnimplementedTestServiceServer
}

func (feed) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	s, _ := interceptors.SessionFromContext(ctx)
	return &testgrpc.SimpleResponse{Username: s.UserID}, nil
}

func (feed) StreamingOutputCall(_ *testgrpc.StreamingOutputCallRequest, ss testgrpc.TestService_StreamingOutputCallServer) error {
	if err := ss.Send(&testgrpc.StreamingOutputCallResponse{}); err != nil {
		return err
	}
	<-ss.Context().Done()
	return nil // the interceptor turns this into the revocation's status
}

// reason formats an error as its code, ErrorInfo reason and metadata.
func reason(err error) string {
	st := status.Convert(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			s := fmt.Sprintf("%s %s", st.Code(), info.GetReason())
			for _, k := range slices.Sorted(maps.Keys(info.GetMetadata())) {
				s += fmt.Sprintf(" %s=%q", k, info.GetMetadata()[k])
			}
			return s
		}
	}
	return st.Code().String()
}

// A service protected by the interceptors: health is public, every other
// method needs a valid access token, and an open stream ends when its
// session is revoked.
func Example_streamRevoked() {
	checker := &exampleChecker{streams: map[*client.Session]func(error){}, tracked: make(chan struct{}, 1)}
	opts := []interceptors.Option{
		interceptors.WithPublicMethods(grpc_health_v1.Health_Check_FullMethodName),
		interceptors.WithCapabilities(map[string]string{testgrpc.TestService_StreamingOutputCall_FullMethodName: "chat"}),
	}
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(interceptors.UnaryServerInterceptor(checker, opts...)),
		grpc.ChainStreamInterceptor(interceptors.StreamServerInterceptor(checker, opts...)),
	)
	testgrpc.RegisterTestServiceServer(srv, feed{})
	grpc_health_v1.RegisterHealthServer(srv, health.NewServer())
	lis := bufconn.Listen(1 << 20)
	go srv.Serve(lis)
	defer srv.Stop()

	conn, _ := grpc.NewClient("passthrough:///example",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer conn.Close()
	api := testgrpc.NewTestServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	as := func(token string) context.Context { return interceptors.WithToken(ctx, token) }

	_, err := grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{})
	fmt.Println("health, no token:", err)
	_, err = api.UnaryCall(ctx, &testgrpc.SimpleRequest{})
	fmt.Println("no token:", reason(err))
	_, err = api.UnaryCall(as("bob-token"), &testgrpc.SimpleRequest{})
	fmt.Println("bob:", reason(err))
	_, err = api.UnaryCall(as("mallory-token"), &testgrpc.SimpleRequest{})
	fmt.Println("mallory:", reason(err))
	fmt.Println("mallory is banned (client side):", errors.Is(client.FromStatus(err), client.ErrBanned))
	resp, _ := api.UnaryCall(as("alice-token"), &testgrpc.SimpleRequest{})
	fmt.Println("alice: hello", resp.GetUsername())

	stream, _ := api.StreamingOutputCall(as("alice-token"), &testgrpc.StreamingOutputCallRequest{})
	_, err = stream.Recv()
	fmt.Println("alice's stream is open:", err == nil)
	<-checker.tracked
	checker.revoke(alice)
	_, err = stream.Recv()
	fmt.Println("alice's stream:", reason(err))
	// Output:
	// health, no token: <nil>
	// no token: Unauthenticated TOKEN_INVALID
	// bob: Unauthenticated TOKEN_EXPIRED
	// mallory: PermissionDenied USER_BANNED ban_id="ban_42" expire_time="2026-12-01T00:00:00Z"
	// mallory is banned (client side): true
	// alice: hello alice
	// alice's stream is open: true
	// alice's stream: Unauthenticated SESSION_REVOKED
}

// A service forwards its caller's token to the services it calls.
func ExampleWithToken() {
	// In a handler, ctx is the incoming call's context.
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer alice-token"))
	if tok, ok := interceptors.TokenFromIncoming(ctx); ok {
		ctx = interceptors.WithToken(ctx, tok)
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	fmt.Println(md.Get("authorization"))
	// Output:
	// [Bearer alice-token]
}

// A client attaches its access token to every call.
func ExampleUnaryClientInterceptor() {
	var accessToken = func(context.Context) (string, error) {
		return "alice-token", nil // e.g. refreshed by the client's session keeper
	}
	conn, err := grpc.NewClient("127.0.0.1:7480",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(interceptors.UnaryClientInterceptor(accessToken)),
		grpc.WithStreamInterceptor(interceptors.StreamClientInterceptor(accessToken)))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	fmt.Println(conn.Target())
	// Output:
	// 127.0.0.1:7480
}
