package interceptors_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// progressCalls counts, on the authority, the StreamProgress streams
// mirrors open.
type progressCalls struct {
	streams atomic.Int64
}

func (p *progressCalls) options() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if info.FullMethod == pb.EventService_StreamProgress_FullMethodName {
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
// stream, not a stream each.
func TestProgressReportsUseOneStream(t *testing.T) {
	var calls progressCalls
	f := startFleet(t, authoritytest.Options{ServerOptions: calls.options()})
	m, _ := f.mirror("streaming", client.MirrorOptions{})
	waitedBans(t, f, 5)
	if n := calls.streams.Load(); n != 1 {
		t.Fatalf("%d StreamProgress streams, want 1", n)
	}
	// The snapshot and 5 bans. The mirror counts a report once Send
	// returns, which may be after the authority confirmed the ban: wait for
	// the count (a minute guards against a hang).
	for deadline := time.Now().Add(time.Minute); m.Stats().Reports < 6; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("Stats().Reports = %d, want at least 6", m.Stats().Reports)
		}
	}
}
