package server_test

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/server"
)

// wantTooLarge checks the refusal of a request over a 4 KiB limit: the
// shape of every limit (ResourceExhausted, RESOURCE_EXHAUSTED, metadata
// limit and max_bytes).
func wantTooLarge(t *testing.T, what string, err error) {
	t.Helper()
	info := wantStatus(t, err, codes.ResourceExhausted, "RESOURCE_EXHAUSTED")
	if m := info.GetMetadata(); m["limit"] != "max_recv_msg_size" || m["max_bytes"] != "4096" {
		t.Errorf("%s: ErrorInfo metadata %v, want limit=max_recv_msg_size max_bytes=4096", what, m)
	}
}

// A request over Limits.MaxRecvMsgSize is refused with the ErrorInfo of
// every limit, on a unary call, a server stream's request and a client
// stream's message, by a real server to a real client; the connection
// stays usable.
func TestMaxRecvMsgSize(t *testing.T) {
	e := newEnv(t, envOptions{server: server.Options{Limits: server.Limits{MaxRecvMsgSize: 4096}}})
	big := strings.Repeat("x", 8000)

	t.Run("Unary", func(t *testing.T) {
		_, err := e.sessions.CreateSession(e.admin(), &pb.CreateSessionRequest{UserId: "u", Attributes: map[string]string{"k": big}})
		wantTooLarge(t, "CreateSession", err)
		if _, err := e.sessions.CreateSession(e.admin(), &pb.CreateSessionRequest{UserId: "u"}); err != nil {
			t.Fatal(err)
		}
	})

	// The limit is on the encoded request: 4096 bytes pass the size check
	// (and fail validation: an attribute value is at most 256 bytes), 4097
	// do not.
	t.Run("Boundary", func(t *testing.T) {
		sized := func(n int) *pb.CreateSessionRequest {
			req := &pb.CreateSessionRequest{UserId: "u", Attributes: map[string]string{"k": ""}}
			req.Attributes["k"] = strings.Repeat("x", n-proto.Size(req)-2) // 2: the longer length prefixes
			if proto.Size(req) != n {
				t.Fatalf("request of %d bytes, want %d", proto.Size(req), n)
			}
			return req
		}
		_, err := e.sessions.CreateSession(e.admin(), sized(4096))
		wantStatus(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
		_, err = e.sessions.CreateSession(e.admin(), sized(4097))
		wantTooLarge(t, "CreateSession of 4097 bytes", err)
	})

	t.Run("ServerStream", func(t *testing.T) {
		stream, err := e.events.Watch(e.admin(), &pb.WatchRequest{StoreId: big})
		if err == nil {
			_, err = stream.Recv()
		}
		wantTooLarge(t, "Watch", err)
	})

	t.Run("ClientStream", func(t *testing.T) {
		stream, err := e.events.StreamProgress(e.admin())
		if err != nil {
			t.Fatal(err)
		}
		// Send may fail once the server has ended the stream; the
		// status comes with CloseAndRecv.
		_ = stream.Send(&pb.StreamProgressRequest{SubscriberId: big})
		_, err = stream.CloseAndRecv()
		wantTooLarge(t, "StreamProgress", err)
	})

	// Above gRPC's own ceiling (4 x the limit) the request is refused
	// before it is read, by gRPC, without ErrorInfo (msgsize.go).
	t.Run("AboveCeiling", func(t *testing.T) {
		_, err := e.sessions.CreateSession(e.admin(), &pb.CreateSessionRequest{UserId: "u", Attributes: map[string]string{"k": strings.Repeat("x", 4*4096+1)}})
		if st, _ := status.FromError(err); st.Code() != codes.ResourceExhausted || len(st.Details()) != 0 {
			t.Fatalf("a request over 4 x the limit: %v, want gRPC's own ResourceExhausted", err)
		}
	})
}
