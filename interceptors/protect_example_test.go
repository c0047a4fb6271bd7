package interceptors_test

import (
	"context"
	"errors"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/interceptors"
)

// protect is README.md's "Protect a Go service", word for word
// (TestReadmeProtectBlock): a gRPC server whose every method but the health
// check needs a live session free of bans, and the stop of its mirror.
func protect(ctx context.Context, authority *client.Client) (*grpc.Server, func(), error) {
	mirror, stop, err := client.StartMirror(ctx, authority, client.MirrorOptions{})
	if err != nil {
		return nil, nil, err
	}
	opts, err := interceptors.ServerOptions(mirror, interceptors.WithPublicMethods(grpc_health_v1.Health_Check_FullMethodName))
	if err != nil {
		stop()
		return nil, nil, err
	}
	return grpc.NewServer(opts...), stop, nil
}

// A Go service protected against a real authority: a session's calls pass
// until its user is banned.
func Example() {
	a, err := authoritytest.New(authoritytest.Options{Clock: authoritytest.WallClock()})
	if err != nil {
		panic(err)
	}
	defer a.Close()
	ctx := context.Background()

	srv, stop, err := protect(ctx, a.Dial(client.WithAPIKey(a.NewAPIKey("svc", "events:watch"))))
	if err != nil {
		panic(err)
	}
	defer stop()
	testgrpc.RegisterTestServiceServer(srv, feed{})
	grpc_health_v1.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(lis)
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	api := testgrpc.NewTestServiceClient(conn)

	admin := a.Dial()
	s, err := admin.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{UserId: "alice"})
	if err != nil {
		panic(err)
	}
	_, err = grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{})
	fmt.Println("health, no token:", err)
	_, err = api.UnaryCall(ctx, &testgrpc.SimpleRequest{})
	fmt.Println("no token:", reason(err))
	resp, err := api.UnaryCall(interceptors.WithToken(ctx, s.GetAccessToken()), &testgrpc.SimpleRequest{})
	fmt.Println("alice:", resp.GetUsername(), err)

	// A write that waits for the service's mirror, as a moderator's does.
	if _, err := admin.Bans.CreateBan(ctx, &pb.CreateBanRequest{
		Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "alice"}}, Reason: "spam", Wait: "60s"}); err != nil {
		panic(err)
	}
	_, err = api.UnaryCall(interceptors.WithToken(ctx, s.GetAccessToken()), &testgrpc.SimpleRequest{})
	fmt.Println("alice, banned:", errors.Is(client.FromStatus(err), client.ErrUserBanned))
	// Output:
	// health, no token: <nil>
	// no token: Unauthenticated TOKEN_INVALID
	// alice: alice <nil>
	// alice, banned: true
}
