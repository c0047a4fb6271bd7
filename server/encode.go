package server

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

// sharedMsg is a WatchResponse that is the same for every subscriber (a
// snapshot part or a change: store_id, revision, server_time, payload),
// encoded once and sent as the same bytes on every stream, instead of
// marshalled once per stream. Its server_time is the authority's clock when the
// message was produced.
type sharedMsg struct {
	resp  *pb.WatchResponse // read-only; nil when encoded at once (newEncodedMsg)
	built time.Time
	last  bool // the last part of a snapshot

	wireOnce sync.Once
	wire     []byte // proto encoding of resp
	wireErr  error
	pmOnce   sync.Once
	pm       grpc.PreparedMsg // wire framed for any stream that sendsPlain
	pmErr    error
}

func newSharedMsg(resp *pb.WatchResponse, now time.Time) *sharedMsg {
	resp.ServerTime = timestamppb.New(now)
	return &sharedMsg{resp: resp, built: now}
}

// newEncodedMsg is a sharedMsg of a response encoded when it was built
// (a snapshot part, snapshotWriter): it has no resp, only its wire.
func newEncodedMsg(wire []byte, now time.Time) *sharedMsg {
	m := &sharedMsg{wire: wire, built: now}
	m.wireOnce.Do(func() {})
	return m
}

// sendsPlain reports whether a stream sends the proto codec's bytes
// unchanged: no compression (grpc answers a compressed request with the
// same compression), no other content-subtype. Only such streams share
// encoded messages; the others marshal each message themselves.
func sendsPlain(ctx context.Context) bool {
	st, ok := grpc.ServerTransportStreamFromContext(ctx).(interface {
		SendCompress() string
		ContentSubtype() string
	})
	if !ok {
		return false
	}
	c, sub := st.SendCompress(), st.ContentSubtype()
	return (c == "" || c == "identity") && (sub == "" || sub == "proto")
}

// msg returns what to pass to stream.SendMsg. plain is sendsPlain of the
// stream; subscriberID is set in the stream's first response only.
func (m *sharedMsg) msg(stream grpc.ServerStream, plain bool, subscriberID string) (any, error) {
	if !plain && m.resp == nil {
		// Encoded when built: the proto codec copies the bytes (and
		// compresses them), this stream's field appended.
		r := rawResponse(m.wire)
		r.SubscriberId = subscriberID
		return r, nil
	}
	if !plain {
		r := m.resp
		return &pb.WatchResponse{StoreId: r.StoreId, Revision: r.Revision, ServerTime: r.ServerTime, Payload: r.Payload, SubscriberId: subscriberID}, nil
	}
	m.wireOnce.Do(func() { m.wire, m.wireErr = proto.Marshal(m.resp) })
	if m.wireErr != nil {
		return nil, m.wireErr
	}
	if subscriberID != "" {
		// The shared bytes plus this stream's field: a concatenation of
		// encodings is the encoding of the merged message, and unknown
		// fields are marshalled as they are (a copy, not an encoding).
		r := rawResponse(m.wire)
		r.SubscriberId = subscriberID
		return r, nil
	}
	// Framed lazily: a snapshot's first part is usually a stream's first
	// response, sent with a subscriber_id.
	m.pmOnce.Do(func() { m.pmErr = m.pm.Encode(stream, rawResponse(m.wire)) })
	if m.pmErr != nil {
		return nil, m.pmErr
	}
	return &m.pm, nil
}

// rawResponse is a WatchResponse whose encoding is wire.
func rawResponse(wire []byte) *pb.WatchResponse {
	r := &pb.WatchResponse{}
	r.ProtoReflect().SetUnknown(protoreflect.RawFields(wire))
	return r
}

// changeMaxAge bounds how old a shared change's server_time (and the ban
// states computed at it) may be when a subscriber is sent it; a subscriber
// further behind gets a fresh one.
const changeMaxAge = time.Second

// sharedChange returns the change c of the store storeID as a message.
// A change the store's ring handed to every watcher near the head carries
// a storage.Slot: the message is built once and kept there for all of
// them. A change read for one watcher alone (one behind the ring's window)
// is built for it.
func (s *Server) sharedChange(storeID string, c storage.Change) *sharedMsg {
	now := s.now()
	slot := c.Slot()
	var prev any
	if slot != nil {
		prev = slot.Load()
		if m, _ := prev.(*sharedMsg); m != nil && now.Sub(m.built) < changeMaxAge {
			return m
		}
	}
	m := newSharedMsg(&pb.WatchResponse{StoreId: storeID, Revision: c.Revision,
		Payload: &pb.WatchResponse_Change{Change: changePB(c, now)}}, now)
	if slot != nil && !slot.CompareAndSwap(prev, m) {
		// Another subscriber built it meanwhile: share theirs.
		if cur, _ := slot.Load().(*sharedMsg); cur != nil && now.Sub(cur.built) < changeMaxAge {
			return cur
		}
	}
	return m
}
