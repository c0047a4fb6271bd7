package server

import (
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
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

// snapshotParts splits a snapshot into responses whose encodings stay
// within Options.SnapshotPartSize (splitSnapshot), all at revision rev of
// store storeID and with one server_time.
func (s *Server) snapshotParts(storeID string, rev int64, snap *pb.Snapshot) []*sharedMsg {
	now := s.now()
	envelope := proto.Size(&pb.WatchResponse{StoreId: storeID, Revision: rev, ServerTime: timestamppb.New(now),
		Payload: &pb.WatchResponse_Snapshot{Snapshot: &pb.Snapshot{More: true}}})
	parts := splitSnapshot(snap, s.opts.SnapshotPartSize-envelope-partReserve)
	out := make([]*sharedMsg, len(parts))
	for i, p := range parts {
		out[i] = newSharedMsg(&pb.WatchResponse{StoreId: storeID, Revision: rev,
			Payload: &pb.WatchResponse_Snapshot{Snapshot: p}}, now)
	}
	return out
}

// splitSnapshot cuts snap into the parts of a Watch snapshot: consecutive
// messages that together hold its lists, each with a payload of at most
// budget bytes, except a part holding a single element larger than budget
// by itself (or the first, should the keys alone exceed it). Parts are cut
// greedily, in order: the keys (all in the first part: they are few and
// small), then the bans, then the revoked sessions.
// The parts share snap's backing arrays (no copy) and must not be
// modified. All but the last have more set; an empty snapshot is one part.
func splitSnapshot(snap *pb.Snapshot, budget int) []*pb.Snapshot {
	c := &partCutter{budget: budget, cur: &pb.Snapshot{Keys: snap.GetKeys()}}
	c.parts = append(c.parts, c.cur)
	for _, k := range c.cur.Keys {
		c.used += elemSize(k)
	}
	cutList(c, snap.GetBans(), func(p *pb.Snapshot, s []*pb.Ban) { p.Bans = s })
	cutList(c, snap.GetRevokedSessions(), func(p *pb.Snapshot, s []*pb.RevokedSession) { p.RevokedSessions = s })
	for _, p := range c.parts[:len(c.parts)-1] {
		p.More = true
	}
	return c.parts
}

// partCutter is the state of splitSnapshot: the part being filled and the
// bytes it holds.
type partCutter struct {
	budget, used int
	cur          *pb.Snapshot
	parts        []*pb.Snapshot
}

// cutList spreads one list of the snapshot over the parts, starting in the
// current one, and sets each part's share with set.
func cutList[T proto.Message](c *partCutter, list []T, set func(*pb.Snapshot, []T)) {
	start := 0
	for i, x := range list {
		n := elemSize(x)
		if c.used > 0 && c.used+n > c.budget {
			set(c.cur, list[start:i:i])
			c.cur = &pb.Snapshot{}
			c.parts = append(c.parts, c.cur)
			c.used, start = 0, i
		}
		c.used += n
	}
	if start < len(list) {
		set(c.cur, list[start:len(list):len(list)])
	}
}

// elemSize is the encoded size of x as an element of a repeated field of
// Snapshot (all of whose numbers have a one-byte tag).
func elemSize(x proto.Message) int {
	return protowire.SizeTag(1) + protowire.SizeBytes(proto.Size(x))
}
