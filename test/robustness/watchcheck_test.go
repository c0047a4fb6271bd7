package robustness

import (
	"slices"
	"strings"
	"testing"
)

func ban(id, u string) WatchEvent   { return WatchEvent{Kind: BanCreated, ID: id, User: u} }
func unban(id, u string) WatchEvent { return WatchEvent{Kind: BanLifted, ID: id, User: u} }
func rev(id, u string) WatchEvent   { return WatchEvent{Kind: SessionRevoked, ID: id, User: u} }

func change(r int64, evs ...WatchEvent) Msg {
	return Msg{Kind: Change, StoreID: "st", Revision: r, Events: evs}
}
func snap(r int64) Msg      { return Msg{Kind: Snapshot, StoreID: "st", Revision: r} }
func start(after int64) Msg { return Msg{Kind: Start, StoreID: "st", Revision: after} }
func ckpt(r int64) Msg      { return Msg{Kind: Checkpoint, StoreID: "st", Revision: r} }

// goodLog is a subscriber's whole life: a snapshot, changes, a resume
// after a lost stream, more changes.
func goodLog() WatchLog {
	return WatchLog{Name: "good", Msgs: []Msg{
		start(0), snap(10), ckpt(10),
		change(11, ban("b1", "u"), rev("s1", "u"), rev("s2", "u")),
		change(12, rev("s3", "v")),
		start(12),
		change(13, unban("b1", "u")),
		ckpt(13),
		change(14, ban("b2", "w")),
	}}
}

func guarantees(vs []Violation) []string {
	var out []string
	for _, v := range vs {
		if !slices.Contains(out, v.Guarantee) {
			out = append(out, v.Guarantee)
		}
	}
	slices.Sort(out)
	return out
}

func checkLogs(contiguous bool, logs ...WatchLog) []Violation {
	return CheckWatch(NewReference(logs), logs, contiguous)
}

func TestWatchGood(t *testing.T) {
	other := WatchLog{Name: "other", Msgs: []Msg{start(11), change(12, rev("s3", "v")), change(13, unban("b1", "u"))}}
	if vs := checkLogs(true, goodLog(), other); len(vs) != 0 {
		t.Fatalf("violations in good logs: %v", vs)
	}
}

// The deliberately broken logs the issue asks for, each reported under
// its guarantee.
func TestWatchBroken(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(m []Msg) []Msg
		want string
	}{
		{"reordered", func(m []Msg) []Msg { m[4], m[3] = m[3], m[4]; return m }, "ordered"},
		{"duplicated", func(m []Msg) []Msg { return slices.Insert(m, 5, m[4]) }, "unique"},
		{"gap", func(m []Msg) []Msg { return slices.Delete(m, 4, 5) }, "reliable"},
		{"resumed from elsewhere", func(m []Msg) []Msg { m[5] = start(11); return m }, "reliable"},
		{"checkpoint past a missed change", func(m []Msg) []Msg { return slices.Delete(m, 6, 7) }, "reliable"},
		{"ban split from its revocations", func(m []Msg) []Msg {
			m[3] = change(11, ban("b1", "u"), rev("s1", "u"))
			return m
		}, "atomic"},
		{"two writes interleaved", func(m []Msg) []Msg {
			m[4] = change(12, rev("s3", "v"), ban("b9", "x"))
			return m
		}, "atomic"},
	} {
		t.Run(c.name, func(t *testing.T) {
			broken := goodLog()
			broken.Name = "broken"
			broken.Msgs = c.edit(broken.Msgs)
			// A good subscriber alongside makes the reference whole, as
			// in a run.
			vs := checkLogs(true, goodLog(), broken)
			if got := guarantees(vs); !slices.Contains(got, c.want) {
				t.Fatalf("violations %v, want %s among them", vs, c.want)
			}
			for _, v := range vs {
				if v.Log != "broken" && v.Log != "reference" {
					t.Errorf("the good log was blamed: %v", v)
				}
			}
		})
	}
}

// A revision nobody got is a gap in the reference itself when revisions
// are consecutive (bbolt), and nothing to report when they are not
// (etcd's revisions count other keys' writes too).
func TestWatchReferenceGap(t *testing.T) {
	l := WatchLog{Name: "only", Msgs: []Msg{snap(10), change(11, rev("s1", "u")), change(13, rev("s2", "u"))}}
	if got := guarantees(checkLogs(true, l)); !slices.Equal(got, []string{"reliable"}) {
		t.Fatalf("contiguous: %v, want reliable", got)
	}
	if vs := checkLogs(false, l); len(vs) != 0 {
		t.Fatalf("etcd-like revisions: %v", vs)
	}
}

func TestWatchResume(t *testing.T) {
	ref := NewReference([]WatchLog{goodLog()})
	good := []Msg{change(12, rev("s3", "v")), change(13, unban("b1", "u")), change(14, ban("b2", "w")), ckpt(14)}
	if vs := CheckResume(ref, "r", "st", 11, true, good); len(vs) != 0 {
		t.Fatalf("good resume: %v", vs)
	}
	for name, c := range map[string]struct {
		msgs     []Msg
		retained bool
	}{
		"silent gap":                 {[]Msg{change(13, unban("b1", "u")), change(14, ban("b2", "w")), ckpt(14)}, false},
		"caught up short":            {[]Msg{change(12, rev("s3", "v")), ckpt(14)}, true},
		"snapshot within retention":  {[]Msg{snap(14), ckpt(14)}, true},
		"other events at a revision": {[]Msg{change(12, rev("s4", "v")), change(13, unban("b1", "u")), change(14, ban("b2", "w")), ckpt(14)}, true},
	} {
		if vs := CheckResume(ref, "r", "st", 11, c.retained, c.msgs); len(vs) == 0 || !strings.Contains(vs[0].Guarantee, "resumable") {
			t.Errorf("%s: %v, want a resumable violation", name, vs)
		}
	}
	// Outside retention a snapshot is the right answer.
	if vs := CheckResume(ref, "r", "st", 3, false, []Msg{snap(14), ckpt(14)}); len(vs) != 0 {
		t.Fatalf("snapshot outside retention: %v", vs)
	}
}
