package client_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// A refusal from the authority, as the Client returns it: errors.Is
// tells what happened, errors.As gives the ban.
func ExampleFromStatus() {
	st, _ := status.New(codes.PermissionDenied, "user is banned").WithDetails(&errdetails.ErrorInfo{
		Reason: "USER_BANNED", Domain: "portcullis.dev",
		Metadata: map[string]string{"ban_id": "ban_06h0ghqy00m88xadz8fw9sfehg", "expire_time": "2026-12-01T00:00:00Z"},
	})
	err := client.FromStatus(st.Err())

	fmt.Println(errors.Is(err, client.ErrBanned), errors.Is(err, client.ErrUserBanned), errors.Is(err, client.ErrIPBanned))
	var ban *client.BanError
	if errors.As(err, &ban) {
		fmt.Println(ban.BanID, ban.ExpireTime.Format(time.RFC3339))
	}
	fmt.Println(status.Code(err))
	// Output:
	// true true false
	// ban_06h0ghqy00m88xadz8fw9sfehg 2026-12-01T00:00:00Z
	// PermissionDenied
}

// A service answers a refused request with the status the authority would
// give.
func ExampleStatus() {
	err := client.Status(&client.BanError{Reason: pb.ErrorReason_IP_BANNED, BanID: "ban_06h0ghqy00m88xadz8fw9sfehg"})
	st, _ := status.FromError(err)
	info := st.Details()[0].(*errdetails.ErrorInfo)
	fmt.Println(st.Code(), info.GetReason(), info.GetDomain(), info.GetMetadata()["ban_id"], fmt.Sprintf("%q", info.GetMetadata()["expire_time"]))

	st, _ = status.FromError(client.Status(fmt.Errorf("%w: session ses_1", client.ErrSessionRevoked)))
	fmt.Println(st.Code(), st.Details()[0].(*errdetails.ErrorInfo).GetReason())
	// Output:
	// PermissionDenied IP_BANNED portcullis.dev ban_06h0ghqy00m88xadz8fw9sfehg ""
	// Unauthenticated SESSION_REVOKED
}

// A service checks tokens against its Mirror of an authority (here a real
// one from authoritytest, in the same process, over an in-memory
// connection); a ban reaches the mirror within milliseconds and refuses
// the user's token from then on.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)

	// The authority, over a bbolt file in a temporary directory.
	a, err := authoritytest.New(authoritytest.Options{})
	if err != nil {
		panic(err)
	}
	defer a.Close()

	// The service's client and mirror; the mirror reads the authority's
	// clock, which a test moves.
	c := a.Dial()
	events := make(chan *pb.Event, 16)
	m := client.NewMirror(c, client.MirrorOptions{Clock: a.Clock().Now, Logger: quiet, OnEvent: func(e *pb.Event) {
		select { // OnEvent must not block the mirror
		case events <- e:
		default:
		}
	}})
	go m.Run(ctx)
	defer cancel() // stop the mirror first
	if err := m.WaitSynced(ctx); err != nil {
		panic(err)
	}

	login, err := c.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{UserId: "alice"})
	if err != nil {
		panic(err)
	}
	s, err := m.Check(ctx, login.GetAccessToken(), client.CheckInput{})
	fmt.Println(s.UserID, s.TenantID, err)

	ban, err := c.Bans.CreateBan(ctx, &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "alice"}}, Reason: "spam"})
	if err != nil {
		panic(err)
	}
	for e := range events {
		if e.GetBanCreated().GetBanId() == ban.GetBan().GetBanId() {
			break
		}
	}
	_, err = m.Check(ctx, login.GetAccessToken(), client.CheckInput{})
	var be *client.BanError
	fmt.Println(errors.Is(err, client.ErrUserBanned), errors.As(err, &be) && be.BanID == ban.GetBan().GetBanId())
	// Output:
	// alice public <nil>
	// true true
}
