package robustness

import (
	"fmt"
	"slices"
)

// EventKind is the kind of an event of the Watch stream.
type EventKind int

// The events the checker tells apart; signing key events are Other.
const (
	BanCreated EventKind = iota + 1
	BanLifted
	SessionRevoked
	Other
)

// WatchEvent is one event of a change, reduced to what the checks need.
type WatchEvent struct {
	Kind EventKind
	ID   string // the ban's or the session's ID
	User string
}

// MsgKind is the kind of an entry of a watch log.
type MsgKind int

// A log has, besides the stream's messages, the start of each stream
// (Start, with the after_revision it asked for).
const (
	Start MsgKind = iota + 1
	Snapshot
	Change
	Checkpoint
)

// Msg is one entry of a watch log. A snapshot in several parts is logged
// once, when its last part has arrived; a mirror's reset, which the
// mirror reports only by its counter, is a Snapshot of unknown Revision
// (-1).
type Msg struct {
	Kind     MsgKind
	StoreID  string
	Revision int64 // Start: the after_revision asked for
	Events   []WatchEvent
}

// WatchLog is everything one subscriber (a mirror or a raw Watch
// subscriber, across its reconnections) got, in order.
type WatchLog struct {
	Name string
	Msgs []Msg
}

// Violation is a broken watch guarantee.
type Violation struct {
	Guarantee string // ordered, unique, atomic, reliable, resumable
	Log       string
	Detail    string
}

func (v Violation) String() string { return fmt.Sprintf("%s: %s: %s", v.Guarantee, v.Log, v.Detail) }

// Reference is the history of changes that the logs together show: for
// each store, every revision any subscriber got, with its events. Every
// subscriber must agree with it.
type Reference struct {
	changes map[string]map[int64][]WatchEvent
	revs    map[string][]int64 // sorted
}

// NewReference merges the changes of logs. Two logs that disagree on a
// revision's events are an atomicity violation (one write's events must
// arrive together, the same for everyone), reported by CheckWatch.
func NewReference(logs []WatchLog) *Reference {
	r := &Reference{changes: map[string]map[int64][]WatchEvent{}, revs: map[string][]int64{}}
	for _, l := range logs {
		for _, m := range l.Msgs {
			if m.Kind != Change {
				continue
			}
			byRev := r.changes[m.StoreID]
			if byRev == nil {
				byRev = map[int64][]WatchEvent{}
				r.changes[m.StoreID] = byRev
			}
			if _, ok := byRev[m.Revision]; !ok {
				byRev[m.Revision] = m.Events
				r.revs[m.StoreID] = append(r.revs[m.StoreID], m.Revision)
			}
		}
	}
	for _, revs := range r.revs {
		slices.Sort(revs)
	}
	return r
}

// Revisions returns the store's revisions with a change, in order.
func (r *Reference) Revisions(store string) []int64 { return r.revs[store] }

// Changes is the number of distinct changes in the reference.
func (r *Reference) Changes() int {
	n := 0
	for _, revs := range r.revs {
		n += len(revs)
	}
	return n
}

// next returns the first revision with a change after rev, if any.
func (r *Reference) next(store string, rev int64) (int64, bool) {
	revs := r.revs[store]
	i, found := slices.BinarySearch(revs, rev)
	if found {
		i++
	}
	if i < len(revs) {
		return revs[i], true
	}
	return 0, false
}

// CheckWatch checks every log against the guarantees etcd's robustness
// tests check of etcd's watch, as Portcullis's Watch contract states them
// (proto/portcullis/v1/event_service.proto):
//
//   - ordered: the revisions of the changes strictly increase (a
//     snapshot may reset them only to another store's history);
//   - unique: no change is delivered twice;
//   - atomic: a change holds the events of one write, and every
//     subscriber gets the same events under a revision: a ban with the
//     revocations it made (etcd's later batches of a ban on many sessions
//     are changes of revocations only, of one user), never interleaved
//     with another write's events;
//   - reliable: after a change, a stream start (a resume) or a snapshot,
//     the next change is the reference's next revision: no gap; a
//     checkpoint never claims a revision the subscriber has not reached.
//
// contiguous says that revisions are consecutive integers (bbolt; etcd's
// are not): then a gap in the reference itself is a violation too.
// Resumability is checked by CheckResume on fresh streams.
func CheckWatch(ref *Reference, logs []WatchLog, contiguous bool) []Violation {
	var vs []Violation
	for store, byRev := range ref.changes {
		revs := ref.revs[store]
		for i, rev := range revs {
			if v, bad := atomicChange(byRev[rev]); bad {
				vs = append(vs, Violation{"atomic", "reference", fmt.Sprintf("revision %d: %s", rev, v)})
			}
			if contiguous && i > 0 && rev != revs[i-1]+1 {
				vs = append(vs, Violation{"reliable", "reference", fmt.Sprintf("no subscriber got revisions %d..%d", revs[i-1]+1, rev-1)})
			}
		}
	}
	for _, l := range logs {
		vs = append(vs, checkLog(ref, l)...)
	}
	return vs
}

// atomicChange reports a change that cannot be one write of the load.
func atomicChange(evs []WatchEvent) (string, bool) {
	if len(evs) == 0 {
		return "an empty change", true
	}
	bans, users := 0, map[string]bool{}
	for _, e := range evs {
		switch e.Kind {
		case BanCreated, BanLifted:
			bans++
			users[e.User] = true
		case SessionRevoked:
			users[e.User] = true
		}
	}
	switch {
	case bans > 1:
		return fmt.Sprintf("%d ban events in one change (writes interleaved): %v", bans, evs), true
	case len(users) > 1:
		return fmt.Sprintf("events of %d users in one change (writes interleaved): %v", len(users), evs), true
	case bans == 1 && evs[0].Kind != BanCreated && evs[0].Kind != BanLifted:
		return fmt.Sprintf("a ban event after other events: %v", evs), true
	case bans == 1 && evs[0].Kind == BanLifted && len(evs) > 1:
		return fmt.Sprintf("a lift with other events: %v", evs), true
	}
	return "", false
}

func checkLog(ref *Reference, l WatchLog) []Violation {
	var vs []Violation
	bad := func(g, format string, args ...any) {
		vs = append(vs, Violation{g, l.Name, fmt.Sprintf(format, args...)})
	}
	store := ""
	pos := int64(-1) // the revision the subscriber is at; -1 unknown
	seen := map[int64]bool{}
	for i, m := range l.Msgs {
		switch m.Kind {
		case Start:
			if m.StoreID == store && pos >= 0 && m.Revision != pos {
				bad("reliable", "entry %d: resumed after %d while at %d", i, m.Revision, pos)
			}
			if m.StoreID != store {
				seen = map[int64]bool{}
			}
			// The subscriber resumes in the store it names; after 0 it
			// asks for a snapshot first.
			store, pos = m.StoreID, m.Revision
			if m.Revision == 0 {
				pos = -1
			}
		case Snapshot:
			if m.StoreID == store && m.Revision >= 0 && pos >= 0 && m.Revision < pos {
				bad("ordered", "entry %d: a snapshot at %d after revision %d of the same store", i, m.Revision, pos)
			}
			if m.StoreID != store {
				seen = map[int64]bool{}
			}
			store, pos = m.StoreID, m.Revision
		case Change:
			if m.StoreID != store {
				bad("reliable", "entry %d: a change of store %q at %d without a snapshot of it", i, m.StoreID, m.Revision)
				store, pos = m.StoreID, -1
			}
			switch {
			case seen[m.Revision]:
				bad("unique", "entry %d: revision %d delivered again", i, m.Revision)
			case pos >= 0 && m.Revision <= pos:
				bad("ordered", "entry %d: revision %d after %d", i, m.Revision, pos)
			case pos >= 0:
				if want, ok := ref.next(store, pos); ok && want != m.Revision {
					bad("reliable", "entry %d: revision %d after %d, skipping %d", i, m.Revision, pos, want)
				}
			}
			if want := ref.changes[store][m.Revision]; !slices.Equal(want, m.Events) {
				bad("atomic", "entry %d: revision %d has events %v, another subscriber got %v", i, m.Revision, m.Events, want)
			}
			seen[m.Revision] = true
			pos = max(pos, m.Revision)
		case Checkpoint:
			if m.StoreID == store && pos >= 0 && m.Revision != pos {
				if want, ok := ref.next(store, pos); ok && want <= m.Revision {
					bad("reliable", "entry %d: checkpoint at %d while at %d: revision %d never arrived", i, m.Revision, pos, want)
				} else if m.Revision < pos {
					bad("ordered", "entry %d: checkpoint at %d after revision %d", i, m.Revision, pos)
				}
			}
			if m.StoreID == store && pos < 0 {
				pos = m.Revision
			}
		}
	}
	return vs
}

// CheckResume checks a fresh stream, opened with after_revision after and
// read until its caught-up checkpoint (msgs, without a Start entry),
// against the reference: resumable. Within retention (retained) it must
// be exactly the reference's changes after after, up to the checkpoint,
// with no snapshot. Outside retention it must start with a snapshot (a
// reset), never with a change that leaves a gap; when it is unknown
// whether after is retained (retained false), either is right.
func CheckResume(ref *Reference, name, store string, after int64, retained bool, msgs []Msg) []Violation {
	var vs []Violation
	bad := func(format string, args ...any) {
		vs = append(vs, Violation{"resumable", name, fmt.Sprintf("after %d: ", after) + fmt.Sprintf(format, args...)})
	}
	if len(msgs) == 0 {
		bad("nothing arrived")
		return vs
	}
	if msgs[0].Kind == Snapshot {
		if retained && msgs[0].StoreID == store {
			bad("a snapshot at %d where the changes after %d are retained", msgs[0].Revision, after)
		}
		return vs
	}
	pos := after
	for i, m := range msgs {
		switch m.Kind {
		case Change:
			want, ok := ref.next(store, pos)
			switch {
			case !ok || want != m.Revision:
				bad("entry %d: revision %d after %d, want %d", i, m.Revision, pos, want)
				return vs
			case !slices.Equal(ref.changes[store][m.Revision], m.Events):
				bad("entry %d: revision %d has events %v, want %v", i, m.Revision, m.Events, ref.changes[store][m.Revision])
			}
			pos = m.Revision
		case Checkpoint:
			if want, ok := ref.next(store, pos); ok && want <= m.Revision {
				bad("caught up at %d without revision %d", m.Revision, want)
			}
			return vs
		case Snapshot:
			bad("entry %d: a snapshot in the middle of a resume", i)
			return vs
		}
	}
	return vs
}
