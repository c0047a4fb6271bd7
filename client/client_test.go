package client_test

import (
	"crypto/tls"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/rpcerr"
)

// TestClientErrors: every call's error is converted, unary and stream
// alike, so errors.Is and errors.As work on them; the API key travels over
// plaintext.
func TestClientErrors(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := e.ctx()

	_, err := e.admin.Bans.GetBan(ctx, &pb.GetBanRequest{BanId: "ban_nope"})
	if !errors.Is(err, rpcerr.ErrNotFound) || status.Code(err) != codes.NotFound {
		t.Fatalf("GetBan: %v", err)
	}
	b := e.ban(&pb.CreateBanRequest{Subject: userSubject("mallory"), Duration: "1h"})
	_, err = e.admin.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{UserId: "mallory"})
	be := wantBan(t, err, client.ErrUserBanned, b.GetBanId())
	if !be.ExpireTime.Equal(b.GetExpireTime().AsTime().Truncate(1e9)) {
		t.Fatalf("expiry %v, want %v", be.ExpireTime, b.GetExpireTime().AsTime())
	}
	_, err = e.admin.Bans.CreateBan(ctx, &pb.CreateBanRequest{Subject: ipSubject("10.1.2.3/8")})
	var ce *client.Error
	if !errors.Is(err, rpcerr.ErrInvalidArgument) || !errors.As(err, &ce) || ce.Metadata["field"] != "subject.ip" {
		t.Fatalf("CreateBan: %v (%+v)", err, ce)
	}

	// A stream: a bad request is refused on the first Recv.
	stream, err := e.admin.Events.Watch(ctx, &pb.WatchRequest{AfterRevision: -1})
	if err == nil {
		_, err = stream.Recv()
	}
	if !errors.Is(err, rpcerr.ErrInvalidArgument) {
		t.Fatalf("Watch: %v", err)
	}

	// Without a key, or with a bad one: API_KEY_INVALID.
	for _, key := range []string{"", "pcl_x_y"} {
		c := e.Dial(client.WithAPIKey(key))
		_, err = c.Keys.ListKeys(ctx, &pb.ListKeysRequest{})
		if !errors.Is(err, client.ErrAPIKeyInvalid) {
			t.Fatalf("ListKeys: %v", err)
		}
		c.Close()
	}
	// A key without the scope: PERMISSION_DENIED.
	key := e.NewAPIKey("reader", "bans:read")
	c := e.Dial(client.WithAPIKey(key))
	if _, err := c.Bans.GetBan(ctx, &pb.GetBanRequest{BanId: b.GetBanId()}); err != nil {
		t.Fatalf("GetBan with bans:read: %v", err)
	}
	_, err = c.Bans.CreateBan(ctx, &pb.CreateBanRequest{Subject: userSubject("x")})
	if !errors.Is(err, client.ErrPermissionDenied) || errors.Is(err, client.ErrBanned) {
		t.Fatalf("CreateBan with bans:read: %v", err)
	}
	ws, err := c.Events.Watch(ctx, &pb.WatchRequest{})
	if err == nil {
		_, err = ws.Recv()
	}
	if !errors.Is(err, client.ErrPermissionDenied) {
		t.Fatalf("Watch with bans:read: %v", err)
	}
}

func TestDialOptions(t *testing.T) {
	if _, err := client.Dial("localhost:1", client.WithInsecure(), client.WithTLS(&tls.Config{})); err == nil {
		t.Fatal("WithTLS and WithInsecure together were accepted")
	}
	// TLS by default; an API key over TLS is fine.
	c, err := client.Dial("localhost:1", client.WithAPIKey("k"))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	c, err = client.Dial("localhost:1", client.WithTLS(nil), client.WithAPIKey("k"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Conn() == nil {
		t.Fatal("no connection")
	}
	c.Close()
}
