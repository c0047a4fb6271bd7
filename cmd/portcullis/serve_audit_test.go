package main

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
)

// A flood of bad API keys, then a clean shutdown: the denied calls not
// audited one by one are in a call.denied.summary record in the file.
func TestServeFlushesDeniedSummaryAtShutdown(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	addr, stop := startServe(t, data)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer pcl_nope_0000")
	const calls = 150
	for range calls {
		if _, err := pb.NewBanServiceClient(conn).ListBans(ctx, &pb.ListBansRequest{}); err == nil {
			t.Fatal("a bad API key was accepted")
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(filepath.Join(data, "portcullis.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var own, summarized int
	err = st.View(context.Background(), func(tx storage.ReadTx) error {
		for r, err := range tx.AuditRecords(storage.AuditQuery{}) {
			if err != nil {
				return err
			}
			switch r.Action {
			case "call.denied":
				own++
			case "call.denied.summary":
				n, err := strconv.Atoi(r.Details["calls"])
				if err != nil {
					return err
				}
				summarized += n
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if own+summarized != calls || summarized == 0 {
		t.Errorf("%d call.denied records and %d calls in summaries, want %d in all, some summarized", own, summarized, calls)
	}
}

func TestServeRefusesNegativeAuditRetention(t *testing.T) {
	if code := run([]string{"serve", "--audit-retention", "-1h", "--data", t.TempDir()}); code != exitUsage {
		t.Fatalf("exit code %d, want %d", code, exitUsage)
	}
}
