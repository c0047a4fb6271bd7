package server_test

import (
	"context"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/server"
)

// FuzzWatchResume opens a Watch stream with fuzzed resume fields against
// one real authority. Whatever after_revision and store_id say, the first
// message is a snapshot, a change after after_revision or a checkpoint, of
// this store, or the call fails with InvalidArgument (a negative revision)
// and never Internal (a panic, recovered). Its seed corpus runs in
// `go test`; `make test` fuzzes it for a few seconds.
func FuzzWatchResume(f *testing.F) {
	e := newEnv(f, envOptions{server: server.Options{CheckpointInterval: 20 * time.Millisecond}})
	for _, u := range []string{"mallory", "trent", "eve"} {
		e.login(&pb.CreateSessionRequest{UserId: u})
		if _, err := e.bans.CreateBan(e.admin(), &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: u + "-banned"}}}); err != nil {
			f.Fatal(err)
		}
	}
	storeID := e.store.StoreID()
	rev := currentRevision(e)
	key := e.keyWith("fuzz-watch", "events:watch")
	for _, r := range []int64{0, 1, rev - 1, rev, rev + 1, -1, 1 << 62, -1 << 63, 1<<63 - 1} {
		for _, s := range []string{"", storeID, "other-store", "\x00", storeID + " "} {
			f.Add(r, s)
		}
	}
	f.Fuzz(func(t *testing.T, after int64, sid string) {
		if !utf8.ValidString(sid) {
			t.Skip("proto3 strings are UTF-8; the client cannot send this")
		}
		ctx, cancel := context.WithTimeout(as(key), time.Minute) // a hang guard
		defer cancel()
		stream, err := e.events.Watch(ctx, &pb.WatchRequest{AfterRevision: after, StoreId: sid})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			if after < 0 {
				wantStatus(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
				return
			}
			t.Fatalf("Watch(after=%d, store_id=%q): %v", after, sid, err)
		}
		if resp.GetStoreId() != storeID {
			t.Fatalf("store_id %q, want %q", resp.GetStoreId(), storeID)
		}
		switch resp.GetPayload().(type) {
		case *pb.WatchResponse_Snapshot:
		case *pb.WatchResponse_Change, *pb.WatchResponse_Checkpoint:
			if after <= 0 || (sid != "" && sid != storeID) || after > currentRevision(e) {
				t.Fatalf("Watch(after=%d, store_id=%q) resumed instead of taking a snapshot", after, sid)
			}
			if resp.GetRevision() < after && resp.GetRevision() != 0 {
				t.Fatalf("Watch(after=%d) sent revision %d", after, resp.GetRevision())
			}
		default:
			t.Fatalf("unexpected first message %v", resp)
		}
	})
}

func currentRevision(e *env) int64 {
	var rev int64
	err := e.store.View(context.Background(), func(tx storage.ReadTx) error { rev = tx.Revision(); return nil })
	if err != nil {
		e.t.Fatal(err)
	}
	return rev
}
