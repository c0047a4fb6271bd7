package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/interceptors"
)

// startAuthority runs a real authority (authoritytest) on a loopback TCP
// port, as `portcullis serve` does, writes its admin key to a file and
// returns its address, the key file and an admin client. Its clock is the
// wall clock: the guestbook's mirror uses time.Now.
func startAuthority(t *testing.T) (addr, keyFile string, admin *client.Client) {
	t.Helper()
	a := authoritytest.Start(t, authoritytest.Options{Clock: authoritytest.WallClock(), Loopback: true})
	keyFile = filepath.Join(t.TempDir(), "admin.key")
	if err := os.WriteFile(keyFile, []byte(a.AdminKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return a.Addr(), keyFile, a.Dial()
}

// guestbook runs the command's run function against the authority and
// returns its address and a channel that gets run's result.
func guestbook(t *testing.T, ctx context.Context, authorityAddr, keyFile string, log *slog.Logger) (string, <-chan error) {
	t.Helper()
	cfg, err := parseFlags([]string{"--authority", authorityAddr, "--api-key-file", keyFile, "--listen", "127.0.0.1:0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, log, func(a net.Addr) { ready <- a }) }()
	select {
	case a := <-ready:
		return a.String(), done
	case err := <-done:
		t.Fatalf("guestbook did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("guestbook did not start")
	}
	return "", nil
}

// dialAs connects to the guestbook with the client interceptors attaching
// token to every call.
func dialAs(t *testing.T, addr, token string) testgrpc.TestServiceClient {
	t.Helper()
	src := func(context.Context) (string, error) { return token, nil }
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(interceptors.UnaryClientInterceptor(src)),
		grpc.WithStreamInterceptor(interceptors.StreamClientInterceptor(src)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return testgrpc.NewTestServiceClient(conn)
}

func sign(ctx context.Context, c testgrpc.TestServiceClient, msg string) (string, error) {
	r, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte(msg)}})
	return string(r.GetPayload().GetBody()), err
}

func recvEntry(st grpc.ServerStreamingClient[testgrpc.StreamingOutputCallResponse]) (string, error) {
	r, err := st.Recv()
	return string(r.GetPayload().GetBody()), err
}

func reasonOf(err error) (codes.Code, string, map[string]string) {
	st := status.Convert(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return st.Code(), info.GetReason(), info.GetMetadata()
		}
	}
	return st.Code(), "", nil
}

// TestGuestbook runs the example against a real authority: a valid token
// is admitted, a banned user's open follow and chat streams end with
// USER_BANNED without their client sending anything, their next call is
// refused, another user is unaffected, and the service shuts down cleanly.
func TestGuestbook(t *testing.T) {
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	authAddr, keyFile, admin := startAuthority(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	addr, done := guestbook(t, runCtx, authAddr, keyFile, log)

	login := func(user string) string {
		resp, err := admin.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{UserId: user, ClientIp: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetAccessToken()
	}
	alice, bob := dialAs(t, addr, login("alice")), dialAs(t, addr, login("bob"))
	anonymous := dialAs(t, addr, "")

	// Health is public; the book is not.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{}); err != nil {
		t.Fatalf("health: %v", err)
	}
	if _, err := sign(ctx, anonymous, "hi"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("anonymous sign: %v, want Unauthenticated", err)
	}

	// A valid token is admitted.
	if e, err := sign(ctx, alice, "hello from alice"); err != nil || e != "alice: hello from alice" {
		t.Fatalf("alice signs: %q, %v", e, err)
	}
	aliceFeed, err := alice.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if e, err := recvEntry(aliceFeed); err != nil || e != "alice: hello from alice" {
		t.Fatalf("alice's feed: %q, %v", e, err)
	}
	aliceChat, err := alice.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := aliceChat.Send(&testgrpc.StreamingOutputCallRequest{Payload: &testgrpc.Payload{Body: []byte("anyone?")}}); err != nil {
		t.Fatal(err)
	}
	if r, err := aliceChat.Recv(); err != nil || string(r.GetPayload().GetBody()) != "alice: anyone?" {
		t.Fatalf("alice's chat: %v, %v", r, err)
	}
	bobFeed, err := bob.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if e, err := recvEntry(bobFeed); err != nil || e != "alice: hello from alice" {
		t.Fatalf("bob's feed: %q, %v", e, err)
	}

	// Ban alice: both her streams end with the ban, though she sends
	// nothing.
	ban, err := admin.Bans.CreateBan(ctx, &pb.CreateBanRequest{
		Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "alice"}}, Duration: "7d", Reason: "spam", Policy: "tos-4.2"})
	if err != nil {
		t.Fatal(err)
	}
	banID := ban.GetBan().GetBanId()
	wantBanned := func(what string, err error) {
		t.Helper()
		code, reason, meta := reasonOf(err)
		if code != codes.PermissionDenied || reason != "USER_BANNED" || meta["ban_id"] != banID || meta["expire_time"] == "" {
			t.Fatalf("%s: %v (%s %v), want PermissionDenied USER_BANNED ban_id %s with an expire_time", what, err, reason, meta, banID)
		}
		if !errors.Is(client.FromStatus(err), client.ErrUserBanned) {
			t.Fatalf("%s: %v does not match client.ErrUserBanned", what, err)
		}
	}
	_, err = recvEntry(aliceFeed)
	wantBanned("alice's feed", err)
	_, err = aliceChat.Recv()
	wantBanned("alice's chat", err)
	_, err = sign(ctx, alice, "still here")
	wantBanned("alice's next call", err)

	// Bob is unaffected: he signs and his feed goes on.
	if _, err := sign(ctx, bob, "hello from bob"); err != nil {
		t.Fatalf("bob signs: %v", err)
	}
	if e, err := recvEntry(bobFeed); err != nil || e != "bob: hello from bob" {
		t.Fatalf("bob's feed after the ban: %q, %v", e, err)
	}

	// Shutdown ends bob's feed with Unavailable and run returns cleanly.
	stop()
	if _, err := recvEntry(bobFeed); status.Code(err) != codes.Unavailable {
		t.Fatalf("bob's feed at shutdown: %v, want Unavailable", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

func TestFlags(t *testing.T) {
	if _, err := parseFlags([]string{"--listen", "0.0.0.0:7480"}, io.Discard); err == nil || !strings.Contains(err.Error(), "--insecure") {
		t.Fatalf("non-loopback listen without --insecure: %v", err)
	}
	c, err := parseFlags([]string{"--listen", "0.0.0.0:7480", "--insecure", "--trusted-proxy", "10.0.0.0/8"}, io.Discard)
	if err != nil || len(c.trustedProxies) != 1 {
		t.Fatalf("parseFlags: %+v, %v", c, err)
	}
	if _, err := parseFlags([]string{"--trusted-proxy", "10.0.0.1"}, io.Discard); err == nil {
		t.Fatal("a proxy without a prefix length was accepted")
	}
	for addr, want := range map[string]bool{"127.0.0.1:1": true, "[::1]:1": true, "localhost:1": true, "10.0.0.1:1": false, "example.com:1": false} {
		if isLoopback(addr) != want {
			t.Fatalf("isLoopback(%s) = %v", addr, !want)
		}
	}
	if err := run(context.Background(), config{apiKeyFile: filepath.Join(t.TempDir(), "missing")}, slog.New(slog.DiscardHandler), nil); err == nil {
		t.Fatal("run without a key file succeeded")
	}
}
