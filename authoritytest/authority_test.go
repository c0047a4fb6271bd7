package authoritytest_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

func userBan(user string) *pb.CreateBanRequest {
	return &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: user}}, Reason: "test"}
}

// A key from NewAPIKey has exactly its scopes; Dial uses the admin key.
func TestNewAPIKeyHasItsScopes(t *testing.T) {
	a := authoritytest.Start(t, authoritytest.Options{})
	ctx := context.Background()
	if _, err := a.Dial().Sessions.CreateSession(ctx, &pb.CreateSessionRequest{UserId: "alice"}); err != nil {
		t.Fatalf("admin CreateSession: %v", err)
	}
	reader := a.Dial(client.WithAPIKey(a.NewAPIKey("reader", "bans:read")))
	if _, err := reader.Bans.ListBans(ctx, &pb.ListBansRequest{}); err != nil {
		t.Fatalf("ListBans with bans:read: %v", err)
	}
	if _, err := reader.Bans.CreateBan(ctx, userBan("alice")); !errors.Is(err, client.ErrPermissionDenied) {
		t.Fatalf("CreateBan with bans:read: %v, want ErrPermissionDenied", err)
	}
}

// The authority's tokens expire by its Clock, not by the wall clock.
func TestClockExpiresTokens(t *testing.T) {
	a := authoritytest.Start(t, authoritytest.Options{})
	if now := a.Clock().Now(); !now.Equal(authoritytest.DefaultStart) {
		t.Fatalf("clock at %v, want %v", now, authoritytest.DefaultStart)
	}
	admin := a.Dial()
	ctx := context.Background()
	s, err := admin.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{UserId: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if exp := s.GetAccessTokenExpireTime().AsTime(); !exp.After(authoritytest.DefaultStart) || exp.After(authoritytest.DefaultStart.Add(time.Hour)) {
		t.Fatalf("token expires at %v, want shortly after %v", exp, authoritytest.DefaultStart)
	}
	verify := &pb.VerifySessionRequest{AccessToken: s.GetAccessToken()}
	if _, err := admin.Sessions.VerifySession(ctx, verify); err != nil {
		t.Fatalf("VerifySession: %v", err)
	}
	a.Clock().Advance(s.GetAccessTokenExpireTime().AsTime().Sub(a.Clock().Now()) + time.Second)
	if _, err := admin.Sessions.VerifySession(ctx, verify); !errors.Is(err, client.ErrTokenExpired) {
		t.Fatalf("VerifySession after the expiry: %v, want ErrTokenExpired", err)
	}
}

// A wall clock follows time.Now, moved by Advance.
func TestWallClock(t *testing.T) {
	c := authoritytest.WallClock()
	before := time.Now()
	c.Advance(time.Hour)
	if got := c.Now(); got.Before(before.Add(time.Hour)) || got.After(time.Now().Add(time.Hour)) {
		t.Fatalf("Now() = %v, want an hour after %v", got, before)
	}
}

// Revision moves with every committed change and is the revision the
// authority serves.
func TestRevision(t *testing.T) {
	a := authoritytest.Start(t, authoritytest.Options{})
	admin := a.Dial()
	before := a.Revision()
	if _, err := admin.Bans.CreateBan(context.Background(), userBan("mallory")); err != nil {
		t.Fatal(err)
	}
	after := a.Revision()
	served, err := admin.Events.GetRevision(context.Background(), &pb.GetRevisionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if after <= before || served.GetRevision() != after {
		t.Fatalf("revision %d before the ban, %d after, GetRevision %d", before, after, served.GetRevision())
	}
}

// ServerOptions reach the authority's grpc.Server; Loopback serves the
// same authority on a TCP address.
func TestServerOptionsAndLoopback(t *testing.T) {
	var calls atomic.Int64
	count := grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if info.FullMethod == pb.SessionService_CreateSession_FullMethodName {
			calls.Add(1)
		}
		return h(ctx, req)
	})
	a := authoritytest.Start(t, authoritytest.Options{Loopback: true, ServerOptions: []grpc.ServerOption{count}})
	if a.Addr() == "" {
		t.Fatal("Addr() is empty under Loopback")
	}
	tcp, err := client.Dial(a.Addr(), client.WithInsecure(), client.WithAPIKey(a.AdminKey))
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	for _, c := range []*client.Client{a.Dial(), tcp} {
		if _, err := c.Sessions.CreateSession(context.Background(), &pb.CreateSessionRequest{UserId: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("the interceptor saw %d CreateSession calls, want 2", n)
	}
	if addr := authoritytest.Start(t, authoritytest.Options{}).Addr(); addr != "" {
		t.Fatalf("Addr() = %q without Loopback", addr)
	}
}

// Close stops the authority and closes the clients Dial returned; a
// second Close is harmless.
func TestClose(t *testing.T) {
	a, err := authoritytest.New(authoritytest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := a.Dial()
	if _, err := c.Sessions.CreateSession(context.Background(), &pb.CreateSessionRequest{UserId: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := c.Sessions.CreateSession(context.Background(), &pb.CreateSessionRequest{UserId: "bob"}); err == nil {
		t.Fatal("a client of a closed authority still works")
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
