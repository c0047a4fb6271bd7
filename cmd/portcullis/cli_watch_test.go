package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// snapshotPart is a part of a snapshot at revision 9 of store "s2" with n
// bans, revoked sessions and keys.
func snapshotPart(more bool, bans, revoked, keys int) *pb.WatchResponse {
	s := &pb.Snapshot{More: more}
	for range bans {
		s.Bans = append(s.Bans, &pb.Ban{BanId: "ban_x"})
	}
	for range revoked {
		s.RevokedSessions = append(s.RevokedSessions, &pb.RevokedSession{SessionId: "ses_x"})
	}
	for range keys {
		s.Keys = append(s.Keys, &pb.VerificationKey{KeyId: "key_x"})
	}
	return &pb.WatchResponse{StoreId: "s2", Revision: 9, ServerTime: timestamppb.New(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)),
		Payload: &pb.WatchResponse_Snapshot{Snapshot: s}}
}

// TestWatchSnapshotParts: watch prints a snapshot in parts as one line, at
// its last part (with -o json, one line per part), and moves the position
// it resumes from only then; a snapshot in one part prints as it always
// did.
func TestWatchSnapshotParts(t *testing.T) {
	parts := []*pb.WatchResponse{snapshotPart(true, 2, 0, 1), snapshotPart(true, 3, 0, 0), snapshotPart(false, 1, 2, 0)}
	for _, json := range []bool{false, true} {
		var out bytes.Buffer
		w := &watcher{out: &out, errOut: io.Discard, json: json, revision: 3, storeID: "s1"}
		for i, p := range parts {
			if err := w.handle(p); err != nil {
				t.Fatal(err)
			}
			if i == len(parts)-1 {
				break
			}
			if w.revision != 3 || w.storeID != "s1" {
				t.Fatalf("json %v: after part %d the position is %s/%d, want s1/3", json, i+1, w.storeID, w.revision)
			}
			if lines := strings.Count(out.String(), "\n"); json && lines != i+1 || !json && lines != 0 {
				t.Fatalf("json %v: after part %d printed %q", json, i+1, out.String())
			}
		}
		if w.revision != 9 || w.storeID != "s2" {
			t.Fatalf("json %v: after the last part the position is %s/%d, want s2/9", json, w.storeID, w.revision)
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if json {
			for i, l := range lines {
				var resp pb.WatchResponse
				if err := protojson.Unmarshal([]byte(l), &resp); err != nil || resp.GetSnapshot().GetMore() != (i < len(parts)-1) {
					t.Fatalf("-o json line %d %q: %v, more %v", i, l, err, resp.GetSnapshot().GetMore())
				}
			}
			if len(lines) != len(parts) {
				t.Fatalf("-o json printed %d lines for %d parts", len(lines), len(parts))
			}
			continue
		}
		if len(lines) != 1 || !strings.HasSuffix(lines[0], "rev=9 snapshot store=s2: 6 active bans, 2 revoked sessions, 1 key (in 3 parts)") {
			t.Fatalf("printed %q, want one summary line of the 3 parts", out.String())
		}

		// The next snapshot starts a new tally; in one part, it says nothing
		// of parts.
		out.Reset()
		if err := w.handle(snapshotPart(false, 1, 0, 1)); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); !strings.HasSuffix(got, "rev=9 snapshot store=s2: 1 active ban, 0 revoked sessions, 1 key\n") {
			t.Fatalf("a one-part snapshot printed %q", got)
		}
	}
}

// TestWatchSaysCaughtUp: a resumed stream's first checkpoint
// (the authority's caught-up marker) makes watch say on stderr that it is
// caught up, with the number of changes it missed; later checkpoints, and
// a stream that started from a snapshot, say nothing.
func TestWatchSaysCaughtUp(t *testing.T) {
	change := func(rev int64) *pb.WatchResponse {
		return &pb.WatchResponse{StoreId: "s1", Revision: rev, ServerTime: timestamppb.Now(),
			Payload: &pb.WatchResponse_Change{Change: &pb.Change{}}}
	}
	checkpoint := func(rev int64) *pb.WatchResponse {
		return &pb.WatchResponse{StoreId: "s1", Revision: rev, ServerTime: timestamppb.Now(),
			Payload: &pb.WatchResponse_Checkpoint{Checkpoint: &pb.Checkpoint{}}}
	}
	var errOut bytes.Buffer
	w := &watcher{out: io.Discard, errOut: &errOut, revision: 3, storeID: "s1"}
	w.startStream()
	for _, resp := range []*pb.WatchResponse{change(4), change(5), checkpoint(5), change(6), checkpoint(6)} {
		if err := w.handle(resp); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := errOut.String(), "portcullis: watch: caught up at revision 5 (2 changes since revision 3)\n"; got != want {
		t.Fatalf("stderr %q, want %q", got, want)
	}

	errOut.Reset()
	w = &watcher{out: io.Discard, errOut: &errOut}
	w.startStream()
	for _, resp := range []*pb.WatchResponse{snapshotPart(false, 1, 0, 1), checkpoint(9)} {
		if err := w.handle(resp); err != nil {
			t.Fatal(err)
		}
	}
	if errOut.Len() != 0 {
		t.Fatalf("a stream from a snapshot printed %q on stderr", errOut.String())
	}
}
