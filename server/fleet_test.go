package server

import (
	"encoding/json"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

func subsAt(revs ...int64) []*subscriber {
	out := make([]*subscriber, len(revs))
	for i, r := range revs {
		out[i] = &subscriber{}
		out[i].applied.Store(r)
	}
	return out
}

// A summary of more distinct revisions than it keeps stays a lower bound:
// for every revision, atLeast never exceeds the mirrors that applied it,
// and is exact for the revisions it kept. Its encoding stays small.
func TestSummaryLowerBound(t *testing.T) {
	var revs []int64
	for r := int64(1); r <= 3*maxSummaryLevels; r++ {
		revs = append(revs, r, r) // two mirrors at each revision
	}
	sum := summarize(subsAt(revs...))
	if sum.Mirrors != len(revs) || len(sum.Applied) != maxSummaryLevels {
		t.Fatalf("summary of %d mirrors: %d mirrors, %d levels; want %d levels", len(revs), sum.Mirrors, len(sum.Applied), maxSummaryLevels)
	}
	firstKept := int64(3*maxSummaryLevels - maxSummaryLevels + 2)
	for rev := int64(0); rev <= 3*maxSummaryLevels+1; rev++ {
		var exact int
		for _, r := range revs {
			if r >= rev {
				exact++
			}
		}
		got := sum.atLeast(rev)
		if got > exact || (rev >= firstKept && got != exact) {
			t.Fatalf("atLeast(%d) = %d, exactly %d applied it", rev, got, exact)
		}
	}
	if v, _ := json.Marshal(sum); len(v) > storage.MaxPresenceValue/2 {
		t.Errorf("encoded summary of %d bytes", len(v))
	}
}

// A replica known at the write is waited for until all of its mirrors
// confirm, or until it goes, when it is reported as it last published.
func TestRemoteProgress(t *testing.T) {
	behind := summary{Mirrors: 2, Applied: [][2]int64{{4, 1}, {9, 1}}}
	caught := summary{Mirrors: 2, Applied: [][2]int64{{9, 2}}}
	last := map[string]summary{"a": behind, "b": behind}

	ps, done := remoteProgress([]string{"a", "b"}, last, map[string]summary{"a": caught, "b": behind, "new": behind}, 9)
	if done || len(ps) != 2 || ps[0].GetConfirmed() != 2 || ps[1].GetConfirmed() != 1 || ps[1].GetTotal() != 2 {
		t.Fatalf("one replica caught up, one behind: %v, done %v", ps, done)
	}
	ps, done = remoteProgress([]string{"a", "b"}, last, map[string]summary{"a": caught}, 9)
	if !done || !ps[1].GetGone() || ps[1].GetConfirmed() != 1 || ps[1].GetTotal() != 2 || ps[0].GetGone() {
		t.Fatalf("the one behind gone: %v, done %v; want done, b gone at 1/2", ps, done)
	}
	if ps, done := remoteProgress(nil, nil, map[string]summary{"a": behind}, 9); !done || ps != nil {
		t.Fatalf("no replica at the write: %v, %v", ps, done)
	}
}
