package interceptors_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/interceptors"
)

// chatService answers UnaryCall with the caller's user id, streams a
// welcome and then waits on StreamingOutputCall, and echoes on
// FullDuplexCall, watching its context as a long-lived handler should.
func chatService() *testService {
	return &testService{
		unary: func(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
			s, _ := interceptors.SessionFromContext(ctx)
			return &testgrpc.SimpleResponse{Username: s.UserID}, nil
		},
		output: func(_ *testgrpc.StreamingOutputCallRequest, ss testgrpc.TestService_StreamingOutputCallServer) error {
			if err := ss.Send(&testgrpc.StreamingOutputCallResponse{}); err != nil {
				return err
			}
			<-ss.Context().Done()
			return ss.Context().Err()
		},
		duplex: func(ss testgrpc.TestService_FullDuplexCallServer) error {
			if err := ss.Send(&testgrpc.StreamingOutputCallResponse{}); err != nil {
				return err
			}
			in := make(chan error, 1)
			msgs := make(chan *testgrpc.StreamingOutputCallRequest)
			go func() {
				for {
					m, err := ss.Recv()
					if err != nil {
						in <- err
						return
					}
					select {
					case msgs <- m:
					case <-ss.Context().Done():
						return
					}
				}
			}()
			for {
				select {
				case m := <-msgs:
					if err := ss.Send(&testgrpc.StreamingOutputCallResponse{Payload: m.GetPayload()}); err != nil {
						return err
					}
				case err := <-in:
					if err == io.EOF {
						return nil
					}
					return err
				case <-ss.Context().Done():
					return ss.Context().Err()
				}
			}
		},
	}
}

func chatOptions() []interceptors.Option {
	return []interceptors.Option{
		interceptors.WithCapabilities(map[string]string{testgrpc.TestService_FullDuplexCall_FullMethodName: "chat"}),
		interceptors.WithDeviceIDMetadata("x-device-id"),
	}
}

// openDuplex opens a FullDuplexCall and waits for its welcome.
func openDuplex(t *testing.T, c testgrpc.TestServiceClient, ctx context.Context) testgrpc.TestService_FullDuplexCallClient {
	t.Helper()
	st, err := c.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatalf("welcome: %v", err)
	}
	return st
}

// echo proves a duplex stream is alive.
func echo(t *testing.T, st testgrpc.TestService_FullDuplexCallClient) {
	t.Helper()
	body := []byte("ping")
	if err := st.Send(&testgrpc.StreamingOutputCallRequest{Payload: &testgrpc.Payload{Body: body}}); err != nil {
		t.Fatalf("echo send: %v", err)
	}
	r, err := st.Recv()
	if err != nil || string(r.GetPayload().GetBody()) != "ping" {
		t.Fatalf("echo: %v, %v", r, err)
	}
}

func wantTracked(t *testing.T, m *client.Mirror, n int) {
	t.Helper()
	if got := m.Stats().Tracked; got != n {
		t.Fatalf("mirror tracks %d streams, want %d", got, n)
	}
}

// TestBanCutsOpenStreams is the whole path against a real authority over
// a real bbolt file: alice and bob hold open streams with cached tokens;
// banning alice ends both of hers with PermissionDenied USER_BANNED
// without her client sending anything, refuses her next unary call, and
// leaves bob alone.
func TestBanCutsOpenStreams(t *testing.T) {
	a := startAuthority(t)
	api := serve(t, a.mirror, chatService(), chatOptions())
	alice, bob := a.login(t, "alice", ""), a.login(t, "bob", "")
	aliceCtx, bobCtx := withTimeout(t, bearer(alice)), withTimeout(t, bearer(bob))

	for tok, user := range map[string]string{alice: "alice", bob: "bob"} {
		if u, err := unaryUser(t, api, bearer(tok)); err != nil || u != user {
			t.Fatalf("UnaryCall as %s: %q, %v", user, u, err)
		}
	}
	aliceFeed := openOutput(t, api, aliceCtx)
	aliceChat := openDuplex(t, api, aliceCtx)
	bobChat := openDuplex(t, api, bobCtx)
	echo(t, aliceChat)
	wantTracked(t, a.mirror, 3)

	ban := a.ban(t, userBan("alice"))
	banned := time.Now()
	checkBanned := func(what string, err error) {
		t.Helper()
		info := wantStatus(t, err, codes.PermissionDenied, "USER_BANNED")
		if info.GetMetadata()["ban_id"] != ban.GetBanId() || info.GetMetadata()["expire_time"] != "" {
			t.Fatalf("%s: metadata %v, want ban_id %s and a permanent expire_time", what, info.GetMetadata(), ban.GetBanId())
		}
		if !errors.Is(client.FromStatus(err), client.ErrUserBanned) {
			t.Fatalf("%s: %v does not match client.ErrUserBanned", what, err)
		}
	}
	_, err := aliceFeed.Recv()
	checkBanned("alice's server stream", err)
	_, err = aliceChat.Recv()
	checkBanned("alice's bidi stream", err)
	t.Logf("alice's streams ended %v after CreateBan returned", time.Since(banned))
	_, err = unaryUser(t, api, bearer(alice))
	checkBanned("alice's next unary call", err)

	echo(t, bobChat)
	if u, err := unaryUser(t, api, bearer(bob)); err != nil || u != "bob" {
		t.Fatalf("bob after alice's ban: %q, %v", u, err)
	}
	wantTracked(t, a.mirror, 1)
	if err := bobChat.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := bobChat.Recv(); err != io.EOF {
		t.Fatalf("bob's stream ended with %v, want io.EOF", err)
	}
	wantTracked(t, a.mirror, 0)
}

// TestRevocationAndDeviceBanCutStreams: a revoked session's stream ends
// with SESSION_REVOKED; a device ban ends streams of that device, whether
// the device is the token's did or the request's x-device-id.
func TestRevocationAndDeviceBanCutStreams(t *testing.T) {
	a := startAuthority(t)
	api := serve(t, a.mirror, chatService(), chatOptions())
	ctx := context.Background()

	carol := a.login(t, "carol", "")
	carolFeed := openOutput(t, api, withTimeout(t, bearer(carol)))
	dave := a.login(t, "dave", "phone-1")
	daveFeed := openOutput(t, api, withTimeout(t, bearer(dave)))
	erin := a.login(t, "erin", "")
	erinFeed := openOutput(t, api, withTimeout(t, metadata.AppendToOutgoingContext(bearer(erin), "x-device-id", "tablet-9")))
	wantTracked(t, a.mirror, 3)

	sessions, err := a.admin.Sessions.ListSessions(ctx, &pb.ListSessionsRequest{TenantId: "public", UserId: "carol"})
	if err != nil || len(sessions.GetSessions()) != 1 {
		t.Fatalf("ListSessions: %v, %v", sessions, err)
	}
	if _, err := a.admin.Sessions.RevokeSession(ctx, &pb.RevokeSessionRequest{
		SessionId: sessions.GetSessions()[0].GetSessionId(), Reason: "logout"}); err != nil {
		t.Fatal(err)
	}
	_, err = carolFeed.Recv()
	wantStatus(t, err, codes.Unauthenticated, "SESSION_REVOKED")

	for device, feed := range map[string]testgrpc.TestService_StreamingOutputCallClient{"phone-1": daveFeed, "tablet-9": erinFeed} {
		b := a.ban(t, &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_DeviceId{DeviceId: device}}})
		_, err = feed.Recv()
		if info := wantStatus(t, err, codes.PermissionDenied, "DEVICE_BANNED"); info.GetMetadata()["ban_id"] != b.GetBanId() {
			t.Fatalf("device %s: metadata %v, want ban %s", device, info.GetMetadata(), b.GetBanId())
		}
	}
	wantTracked(t, a.mirror, 0)
}

// TestCapabilityBanRefusesTheMappedMethod: a "chat" restriction refuses
// the method mapped to chat and leaves the others usable.
func TestCapabilityBanRefusesTheMappedMethod(t *testing.T) {
	a := startAuthority(t)
	api := serve(t, a.mirror, chatService(), chatOptions())
	alice := a.login(t, "alice", "")
	req := userBan("alice")
	req.Capabilities = []string{"chat"}
	b := a.ban(t, req)

	st, err := api.FullDuplexCall(withTimeout(t, bearer(alice)))
	if err == nil {
		_, err = st.Recv()
	}
	info := wantStatus(t, err, codes.PermissionDenied, "CAPABILITY_RESTRICTED")
	if info.GetMetadata()["ban_id"] != b.GetBanId() || info.GetMetadata()["capability"] != "chat" {
		t.Fatalf("metadata %v", info.GetMetadata())
	}
	if u, err := unaryUser(t, api, bearer(alice)); err != nil || u != "alice" {
		t.Fatalf("UnaryCall under a chat restriction: %q, %v", u, err)
	}
	openOutput(t, api, withTimeout(t, bearer(alice))) // not mapped to chat
}

// TestCapabilityBanCutsTheMappedStreams: a "chat" restriction that arrives
// while alice has streams open ends her chat stream (mapped to chat) with
// CAPABILITY_RESTRICTED and leaves her feed (not mapped) open.
func TestCapabilityBanCutsTheMappedStreams(t *testing.T) {
	a := startAuthority(t)
	api := serve(t, a.mirror, chatService(), chatOptions())
	alice := a.login(t, "alice", "")
	ctx := withTimeout(t, bearer(alice))
	chat := openDuplex(t, api, ctx)
	openOutput(t, api, ctx) // open until ctx ends
	echo(t, chat)
	wantTracked(t, a.mirror, 2)

	req := userBan("alice")
	req.Capabilities = []string{"chat"}
	b := a.ban(t, req)
	_, err := chat.Recv()
	info := wantStatus(t, err, codes.PermissionDenied, "CAPABILITY_RESTRICTED")
	if info.GetMetadata()["ban_id"] != b.GetBanId() || info.GetMetadata()["capability"] != "chat" {
		t.Fatalf("metadata %v", info.GetMetadata())
	}
	a.caughtUp(t)
	wantTracked(t, a.mirror, 1) // the feed, still open
}
