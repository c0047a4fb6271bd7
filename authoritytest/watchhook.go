package authoritytest

import (
	"context"

	"google.golang.org/grpc"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// BeforeWatchMessage returns a client option under which every message of
// the client's EventService.Watch streams is given to f as it is received,
// before the caller (a Mirror) sees it. While f blocks, a Mirror on that
// client applies nothing more and reports no progress for it: tests use it
// to hold one mirror back, or to time a snapshot's parts. It is a gRPC
// stream interceptor, so the Mirror carries no test hook.
func BeforeWatchMessage(f func(*pb.WatchResponse)) client.Option {
	return client.WithDialOptions(grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc,
		cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil || method != pb.EventService_Watch_FullMethodName {
			return cs, err
		}
		return &heldStream{ClientStream: cs, f: f}, nil
	}))
}

type heldStream struct {
	grpc.ClientStream
	f func(*pb.WatchResponse)
}

func (s *heldStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if r, ok := m.(*pb.WatchResponse); ok && err == nil {
		s.f(r)
	}
	return err
}
