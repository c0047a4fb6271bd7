package interceptors_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/portcullis-dev/portcullis/client"
	"github.com/portcullis-dev/portcullis/interceptors"
)

// fakeChecker admits the tokens it knows and refuses others with the error
// it was given. It records every check and every tracked stream.
type fakeChecker struct {
	mu       sync.Mutex
	sessions map[string]*client.Session // token -> session
	refuse   map[string]error           // token -> error
	checks   []checkCall
	streams  []*trackedStream
	tracked  chan *trackedStream // every Track, if not nil
	// refuseOnTrack, if set, is passed to cancel before Track returns, as
	// a mirror does when a ban arrived between Check and Track.
	refuseOnTrack error
}

type checkCall struct {
	token string
	in    client.CheckInput
}

type trackedStream struct {
	session   *client.Session
	in        client.CheckInput
	cancel    func(error)
	untracked chan struct{} // closed by untrack
	once      sync.Once
}

func newFakeChecker() *fakeChecker {
	return &fakeChecker{
		sessions: map[string]*client.Session{},
		refuse:   map[string]error{},
		tracked:  make(chan *trackedStream, 16),
	}
}

// login makes token valid for a session of user with device did.
func (f *fakeChecker) login(token, user, did string) *client.Session {
	s := &client.Session{SessionID: "ses_" + user, TenantID: "public", UserID: user, DeviceID: did,
		IssueTime: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC), ExpireTime: time.Date(2026, 11, 23, 12, 15, 0, 0, time.UTC)}
	f.mu.Lock()
	f.sessions[token] = s
	f.mu.Unlock()
	return s
}

func (f *fakeChecker) refuseWith(token string, err error) {
	f.mu.Lock()
	f.refuse[token] = err
	f.mu.Unlock()
}

func (f *fakeChecker) Check(_ context.Context, token string, in client.CheckInput) (*client.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks = append(f.checks, checkCall{token, in})
	if err, ok := f.refuse[token]; ok {
		return nil, err
	}
	if s, ok := f.sessions[token]; ok {
		return s, nil
	}
	return nil, client.ErrTokenInvalid
}

func (f *fakeChecker) Track(s *client.Session, in client.CheckInput, cancel func(error)) func() {
	ts := &trackedStream{session: s, in: in, cancel: cancel, untracked: make(chan struct{})}
	f.mu.Lock()
	f.streams = append(f.streams, ts)
	f.mu.Unlock()
	if f.tracked != nil {
		f.tracked <- ts
	}
	if f.refuseOnTrack != nil {
		cancel(f.refuseOnTrack)
	}
	return func() { ts.once.Do(func() { close(ts.untracked) }) }
}

func (f *fakeChecker) lastCheck(t *testing.T) checkCall {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.checks) == 0 {
		t.Fatal("the checker was not called")
	}
	return f.checks[len(f.checks)-1]
}

func (f *fakeChecker) numChecks() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.checks)
}

func (f *fakeChecker) numStreams() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.streams)
}

// nextTracked waits for the next Track call.
func (f *fakeChecker) nextTracked(t *testing.T) *trackedStream {
	t.Helper()
	select {
	case ts := <-f.tracked:
		return ts
	case <-time.After(time.Minute):
		t.Fatal("no stream was tracked")
		return nil
	}
}

// testService is a grpc.testing.TestService whose methods the test sets.
type testService struct {
	testgrpc.UnimplementedTestServiceServer
	unary  func(context.Context, *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error)
	output func(*testgrpc.StreamingOutputCallRequest, testgrpc.TestService_StreamingOutputCallServer) error
	duplex func(testgrpc.TestService_FullDuplexCallServer) error
}

func (s *testService) EmptyCall(ctx context.Context, _ *testgrpc.Empty) (*testgrpc.Empty, error) {
	return &testgrpc.Empty{}, nil
}

func (s *testService) UnaryCall(ctx context.Context, r *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	if s.unary != nil {
		return s.unary(ctx, r)
	}
	return &testgrpc.SimpleResponse{}, nil
}

func (s *testService) StreamingOutputCall(r *testgrpc.StreamingOutputCallRequest, ss testgrpc.TestService_StreamingOutputCallServer) error {
	return s.output(r, ss)
}

func (s *testService) FullDuplexCall(ss testgrpc.TestService_FullDuplexCallServer) error {
	return s.duplex(ss)
}

// serve serves svc over bufconn behind both server interceptors and
// returns a client; client options (interceptors) may be added.
func serve(t testing.TB, c interceptors.Checker, svc *testService, opts []interceptors.Option, dialOpts ...grpc.DialOption) testgrpc.TestServiceClient {
	t.Helper()
	sopts, err := interceptors.ServerOptions(c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(sopts...)
	testgrpc.RegisterTestServiceServer(g, svc)
	lis := bufconn.Listen(1 << 20)
	go g.Serve(lis)
	conn, err := grpc.NewClient("passthrough:///bufnet", append([]grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}, dialOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		g.Stop()
	})
	return testgrpc.NewTestServiceClient(conn)
}

// bearer returns a context whose calls carry token.
func bearer(token string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}

// withTimeout bounds a test's wait on the network.
func withTimeout(t *testing.T, ctx context.Context) context.Context {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// wantStatus fails unless err is a status with code and ErrorInfo reason
// (domain portcullis.dev), and returns the ErrorInfo.
func wantStatus(t testing.TB, err error, code codes.Code, reason string) *errdetails.ErrorInfo {
	t.Helper()
	info, got := statusOf(err)
	if got != code || info.GetReason() != reason || info.GetDomain() != "portcullis.dev" {
		t.Fatalf("got %v (reason %q, domain %q), want %v %s", err, info.GetReason(), info.GetDomain(), code, reason)
	}
	return info
}

func statusOf(err error) (*errdetails.ErrorInfo, codes.Code) {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info, st.Code()
		}
	}
	return nil, st.Code()
}
