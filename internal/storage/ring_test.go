package storage

import (
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
)

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// A ring holds every change after its floor, drops the oldest beyond its
// size, wakes its watchers on every append, and decodes a change once for
// all of them, who share its Slot.
func TestRing(t *testing.T) {
	var decodes atomic.Int64
	decode := func(rev int64, raw []byte) (Change, error) {
		decodes.Add(1)
		if string(raw) == "bad" {
			return Change{}, errors.New("undecodable")
		}
		return Change{Revision: rev, Events: []Event{{Kind: EventKind(raw)}}}, nil
	}
	r := NewRing(2)
	if _, _, covered := r.After(0, nil, 10); covered || r.Covers(0) {
		t.Fatal("a ring not started covers nothing")
	}
	r.Reset(10)
	es, wake, covered := r.After(10, nil, 10)
	if !covered || len(es) != 0 || wake == nil || r.Covers(9) {
		t.Fatalf("at the floor: %d entries, covered %v", len(es), covered)
	}
	for rev := int64(11); rev <= 15; rev++ {
		r.Append(NewEntry(rev, []byte(strconv.FormatInt(rev, 10)), decode))
		if !isClosed(wake) {
			t.Fatalf("append of %d woke no one", rev)
		}
		_, wake, _ = r.After(rev, nil, 10)
	}
	// Five appended to a ring of two: it keeps the last two.
	if r.Covers(12) || !r.Covers(13) || r.Last() != 15 {
		t.Fatalf("after 5 appends: covers 12 %v, covers 13 %v, last %d", r.Covers(12), r.Covers(13), r.Last())
	}
	es, _, covered = r.After(13, nil, 1)
	if !covered || len(es) != 1 || es[0].Revision != 14 {
		t.Fatalf("After(13, max 1): %v, covered %v", es, covered)
	}
	a, err := es[0].Change()
	again, _, _ := r.After(13, nil, 1)
	b, _ := again[0].Change()
	if err != nil || a.Revision != 14 || a.Events[0].Kind != "14" || decodes.Load() != 1 {
		t.Fatalf("decoded %+v, %v, %d decodes", a, err, decodes.Load())
	}
	if a.Slot() == nil || a.Slot() != b.Slot() {
		t.Fatal("two watchers of one entry do not share its slot")
	}
	a.Slot().Store("encoded")
	if b.Slot().Load() != "encoded" || (Change{}).Slot() != nil {
		t.Fatal("slot not shared, or a change of no ring has one")
	}

	r.Append(NewEntry(16, []byte("bad"), decode))
	es, _, _ = r.After(15, nil, 1)
	if _, err := es[0].Change(); err == nil {
		t.Fatal("an undecodable change decoded")
	}
	if c, _ := DecodedEntry(Change{Revision: 17}).Change(); c.Revision != 17 || c.Slot() == nil {
		t.Fatalf("decoded entry: %+v", c)
	}

	// A ring of no size follows the head only.
	z := NewRing(0)
	z.Reset(1)
	z.Append(NewEntry(2, nil, decode), NewEntry(3, nil, decode))
	if es, wake, covered := z.After(3, nil, 10); !covered || len(es) != 0 || wake == nil || z.Covers(2) {
		t.Fatalf("ring of size 0: %d entries, covered %v, covers 2 %v", len(es), covered, z.Covers(2))
	}
}
