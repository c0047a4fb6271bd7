package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// TestMirrorCaughtUpMarker: with a checkpoint interval no test
// waits out, the mirror still learns that it has caught up right after
// its snapshot and right after a resume, from the authority's caught-up
// checkpoint, and is fresh at the authority's revision.
func TestMirrorCaughtUpMarker(t *testing.T) {
	a := authoritytest.Start(t, authoritytest.Options{CheckpointInterval: time.Hour})
	m := client.NewMirror(a.Dial(client.WithAPIKey(a.NewAPIKey("svc", "events:watch"))),
		client.MirrorOptions{Clock: a.Clock().Now, Logger: testLogger(t), MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	eventually(t, "the caught-up checkpoint after the snapshot", func() bool { return m.Stats().CaughtUp == 1 })
	if st := m.Stats(); st.Checkpoints != 1 || st.Resets != 1 || st.Revision != a.Revision() {
		t.Fatalf("after the snapshot: %+v, want one reset and one checkpoint at %d", st, a.Revision())
	}

	// A resume: the authority restarts on its data, the mirror reconnects
	// from its revision and gets the marker at once.
	a.Stop()
	a.Restart()
	admin := a.Dial()
	if _, err := admin.Bans.CreateBan(context.Background(), &pb.CreateBanRequest{Subject: userSubject("mallory")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the caught-up checkpoint after the resume", func() bool { return m.Stats().CaughtUp == 2 })
	eventually(t, "the ban", func() bool { return m.Revision() == a.Revision() })
	// A resume, not a new snapshot. The mirror may open more than one
	// stream meanwhile (one to the authority on its way down).
	if st := m.Stats(); st.Resets != 1 || st.Connects < 2 {
		t.Fatalf("after the resume: %+v, want one reset and at least two connects", st)
	}
}
