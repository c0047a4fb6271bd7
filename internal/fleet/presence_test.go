package fleet

import (
	"encoding/json"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

func subsAt(revs ...int64) []*Subscriber {
	out := make([]*Subscriber, len(revs))
	for i, r := range revs {
		out[i] = &Subscriber{}
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
	behind := Summary{Mirrors: 2, Applied: [][2]int64{{4, 1}, {9, 1}}}
	caught := Summary{Mirrors: 2, Applied: [][2]int64{{9, 2}}}
	last := map[string]Summary{"a": behind, "b": behind}

	ps, done := remoteProgress([]string{"a", "b"}, last, map[string]Summary{"a": caught, "b": behind, "new": behind}, 9)
	if done || len(ps) != 2 || ps[0].Confirmed != 2 || ps[1].Confirmed != 1 || ps[1].Total != 2 {
		t.Fatalf("one replica caught up, one behind: %v, done %v", ps, done)
	}
	ps, done = remoteProgress([]string{"a", "b"}, last, map[string]Summary{"a": caught}, 9)
	if !done || !ps[1].Gone || ps[1].Confirmed != 1 || ps[1].Total != 2 || ps[0].Gone {
		t.Fatalf("the one behind gone: %v, done %v; want done, b gone at 1/2", ps, done)
	}
	if ps, done := remoteProgress(nil, nil, map[string]Summary{"a": behind}, 9); !done || ps != nil {
		t.Fatalf("no replica at the write: %v, %v", ps, done)
	}
}
