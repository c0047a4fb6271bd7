package server

import (
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

// DefaultSnapshotPartSize is the default of Options.SnapshotPartSize: a
// quarter of gRPC's default 4 MiB receive limit, so that any gRPC client
// (grpcurl, `portcullis watch`, a mirror in another language) can take a
// snapshot of any size without raising its limit, with room to spare.
const DefaultSnapshotPartSize = 1 << 20

// partReserve is what a part's budget keeps back from
// Options.SnapshotPartSize for what is not known when the parts are cut:
// the snapshot field's length prefix (a few bytes more for a large part
// than for the empty one measured) and the subscriber_id that a reporting
// stream's first response carries (30 bytes).
const partReserve = 64

// Field numbers of the messages snapshotWriter encodes by hand
// (proto/portcullis/v1/event_service.proto).
const (
	fieldResponseSnapshot protowire.Number = 4 // WatchResponse.snapshot
	fieldSnapshotBans     protowire.Number = 1 // Snapshot.bans
	fieldSnapshotRevoked  protowire.Number = 2 // Snapshot.revoked_sessions
	fieldSnapshotKeys     protowire.Number = 3 // Snapshot.keys
	fieldSnapshotMore     protowire.Number = 4 // Snapshot.more
)

// snapshotWriter turns a snapshot, as the authority reads it
// (authority.StreamSnapshot), into the encoded responses of a Watch
// snapshot, published to a snapshotBuild as they are cut: consecutive
// messages that together hold its lists, each with a payload of at most
// budget bytes, except a part holding a single element larger than budget
// by itself (or the first, should the keys alone exceed it). Parts are cut
// greedily, in order: the keys (all in the first part: they are few and
// small), then the bans, then the revoked sessions. All but the last have
// more set; an empty snapshot is one part.
//
// Each element is encoded as it is read, into the bytes of the part being
// filled: a ban straight from its store record (appendBanWire), the keys
// and revoked sessions through their messages, garbage at once. So a
// snapshot of a million bans is held only once, encoded (about 100 bytes
// a ban), never also as store records and protobuf messages, and the
// encoding that every stream sends is done here, once.
type snapshotWriter struct {
	storeID  string
	partSize int
	out      *snapshotBuild

	now     time.Time
	head    []byte // a part's response up to its Snapshot: store_id, revision, server_time
	reserve int    // bytes left free at the start of each body for its head
	budget  int    // of a part's Snapshot fields
	body    []byte // the part being filled: reserve bytes, then its Snapshot fields, encoded
	elem    []byte // the ban being encoded (appendBanWire), reused
}

// newSnapshotWriter returns a writer for store storeID whose parts'
// encodings stay within partSize (Options.SnapshotPartSize), published to
// out.
func newSnapshotWriter(storeID string, partSize int, out *snapshotBuild) *snapshotWriter {
	return &snapshotWriter{storeID: storeID, partSize: partSize, out: out}
}

func (w *snapshotWriter) Begin(rev int64, now time.Time, keys []storage.SigningKey) error {
	if err := w.out.begin(rev); err != nil {
		return err
	}
	envelope := &pb.WatchResponse{StoreId: w.storeID, Revision: rev, ServerTime: timestamppb.New(now)}
	head, err := proto.Marshal(envelope)
	if err != nil {
		return err
	}
	envelope.Payload = &pb.WatchResponse_Snapshot{Snapshot: &pb.Snapshot{More: true}}
	w.now, w.head = now, head
	w.budget = w.partSize - proto.Size(envelope) - partReserve
	// The snapshot field's tag and length (at most 5 bytes: a part is far
	// below 4 GiB) go before the fields.
	w.reserve = len(head) + protowire.SizeTag(fieldResponseSnapshot) + 5
	w.body = make([]byte, w.reserve, w.reserve+4<<10) // most snapshots are small: grown as needed
	for _, k := range keys {
		if err := w.add(fieldSnapshotKeys, keyPB(k), false); err != nil {
			return err
		}
	}
	return nil
}

// Ban encodes b straight from the store's record (appendBanWire), not
// through banPB and proto.Marshal: most of a large snapshot is bans.
func (w *snapshotWriter) Ban(b *storage.Ban) error {
	var err error
	if w.elem, err = appendBanWire(w.elem[:0], b, w.now); err != nil {
		return err
	}
	w.cutFor(fieldSnapshotBans, len(w.elem))
	w.body = protowire.AppendTag(w.body, fieldSnapshotBans, protowire.BytesType)
	w.body = protowire.AppendBytes(w.body, w.elem)
	return nil
}

func (w *snapshotWriter) RevokedSession(s *storage.Session) error {
	return w.add(fieldSnapshotRevoked, revokedSessionPB(*s), true)
}

// add appends one element of repeated field num, first cutting the part
// when the element does not fit in what is left of it (and cut is set:
// the keys all go in the first part).
func (w *snapshotWriter) add(num protowire.Number, m proto.Message, cut bool) error {
	n := proto.Size(m)
	if cut {
		w.cutFor(num, n)
	}
	w.body = protowire.AppendTag(w.body, num, protowire.BytesType)
	w.body = protowire.AppendVarint(w.body, uint64(n))
	var err error
	w.body, err = proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(w.body, m) // sized just above
	return err
}

// cutFor publishes the part being filled when an element of field num,
// n bytes encoded, does not fit in what is left of it.
func (w *snapshotWriter) cutFor(num protowire.Number, n int) {
	if used, elem := len(w.body)-w.reserve, protowire.SizeTag(num)+protowire.SizeBytes(n); used > 0 && used+elem > w.budget {
		w.publish(true)
		// Parts after the first are as full as it is: allocated once, with
		// room for the more flag.
		w.body = make([]byte, w.reserve, w.reserve+max(w.budget, elem)+2)
	}
}

// finish publishes the last part.
func (w *snapshotWriter) finish() { w.publish(false) }

// publish completes the part being filled, its head in the room left for
// it and, unless it is the last, the more flag, and publishes it.
func (w *snapshotWriter) publish(more bool) {
	body := w.body
	if more {
		body = protowire.AppendTag(body, fieldSnapshotMore, protowire.VarintType)
		body = protowire.AppendVarint(body, 1)
	}
	hdr := protowire.AppendTag(slices.Clone(w.head), fieldResponseSnapshot, protowire.BytesType)
	hdr = protowire.AppendVarint(hdr, uint64(len(body)-w.reserve))
	off := w.reserve - len(hdr)
	copy(body[off:], hdr)
	msg := newEncodedMsg(body[off:], w.now)
	msg.last = !more
	w.out.publish(msg)
	w.body = nil
}
