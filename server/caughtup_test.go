package server_test

import (
	"testing"
	"time"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/server"
)

// wantCheckpoint fails unless the next message is a checkpoint at rev.
func (w *watchStream) wantCheckpoint(rev int64) {
	w.t.Helper()
	if msg := w.recv(); msg.GetCheckpoint() == nil || msg.GetRevision() != rev {
		w.t.Fatalf("got %v, want the caught-up checkpoint at revision %d", msg, rev)
	}
}

// TestWatchCaughtUpMarker: with a checkpoint interval no test
// waits out, a stream still sends a checkpoint right after a snapshot's
// last part, right after a resume's missed changes, and at once when a
// resume missed nothing; then only new changes, no further checkpoint.
func TestWatchCaughtUpMarker(t *testing.T) {
	e := newEnv(t, envOptions{server: server.Options{CheckpointInterval: time.Hour}})
	newWatchFixture(e)
	r := e.revision()

	snap := e.watch(t, nil, &pb.WatchRequest{})
	if msg := snap.recv(); msg.GetSnapshot() == nil || msg.GetRevision() != r {
		t.Fatalf("got %v, want the snapshot at %d", msg, r)
	}
	snap.wantCheckpoint(r)
	storeID := e.store.StoreID()
	snap.close()

	// Missed while away: three changes.
	for _, u := range []string{"m1", "m2", "m3"} {
		e.ban(&pb.CreateBanRequest{Subject: userSubject(u)})
	}
	resumed := e.watch(t, nil, &pb.WatchRequest{AfterRevision: r, StoreId: storeID})
	for rev := r + 1; rev <= r+3; rev++ {
		if msg := resumed.recv(); msg.GetChange() == nil || msg.GetRevision() != rev {
			t.Fatalf("got %v, want the missed change at %d", msg, rev)
		}
	}
	resumed.wantCheckpoint(r + 3)
	// Live from here: the next message is the next write.
	e.ban(&pb.CreateBanRequest{Subject: userSubject("live")})
	if msg := resumed.recv(); msg.GetChange() == nil || msg.GetRevision() != r+4 {
		t.Fatalf("got %v, want the live change at %d", msg, r+4)
	}
	resumed.close()

	// A resume that missed nothing is caught up at once.
	head := e.watch(t, nil, &pb.WatchRequest{AfterRevision: r + 4, StoreId: storeID})
	head.wantCheckpoint(r + 4)
}
