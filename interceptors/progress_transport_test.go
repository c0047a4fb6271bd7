package interceptors_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// progressCalls counts, on the authority, the progress RPCs mirrors make;
// with withoutStream it answers StreamProgress as an older authority
// would.
type progressCalls struct {
	unary, streams atomic.Int64
	withoutStream  bool
}

func (p *progressCalls) options() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if info.FullMethod == pb.EventService_ReportProgress_FullMethodName {
				p.unary.Add(1)
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if info.FullMethod == pb.EventService_StreamProgress_FullMethodName {
				if p.withoutStream {
					return status.Error(codes.Unimplemented, "unknown method StreamProgress")
				}
				p.streams.Add(1)
			}
			return h(srv, ss)
		}),
	}
}

// waitedBans makes n bans with a wait and checks each was confirmed by
// the one mirror.
func waitedBans(t *testing.T, f *fleet, n int) {
	t.Helper()
	for i := range n {
		resp, err := f.admin.Bans.CreateBan(context.Background(), waitedBan(fmt.Sprint("user-", i), "20s"))
		if err != nil {
			t.Fatal(err)
		}
		if e := resp.GetEnforcement(); e.GetConfirmed() != 1 || e.GetTotal() != 1 {
			t.Fatalf("ban %d: enforcement %v, want 1/1", i, e)
		}
	}
}

// A mirror sends its progress reports as messages of one StreamProgress
// stream, not as a call each.
func TestProgressReportsUseOneStream(t *testing.T) {
	var calls progressCalls
	f := startFleet(t, authoritytest.Options{ServerOptions: calls.options()})
	m, _ := f.mirror("streaming", client.MirrorOptions{})
	waitedBans(t, f, 5)
	if calls.unary.Load() != 0 || calls.streams.Load() != 1 {
		t.Fatalf("%d ReportProgress calls and %d StreamProgress streams, want 0 and 1", calls.unary.Load(), calls.streams.Load())
	}
	if r := m.Stats().Reports; r < 6 { // the snapshot and 5 bans
		t.Fatalf("Stats().Reports = %d, want at least 6", r)
	}
}

// Against an authority without StreamProgress, the mirror reports with
// ReportProgress calls, and waited writes still see it.
func TestProgressReportsFallBackToCalls(t *testing.T) {
	calls := progressCalls{withoutStream: true}
	f := startFleet(t, authoritytest.Options{ServerOptions: calls.options()})
	f.mirror("unary", client.MirrorOptions{})
	waitedBans(t, f, 5)
	if calls.unary.Load() < 5 || calls.streams.Load() != 0 {
		t.Fatalf("%d ReportProgress calls and %d StreamProgress streams, want at least 5 and 0", calls.unary.Load(), calls.streams.Load())
	}
}
