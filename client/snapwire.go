package client

import (
	"time"
	"unicode/utf8"
	"unsafe"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// watchCodec decodes a Watch stream's messages for a mirror. A snapshot
// part's bans, nearly all of a large snapshot, are read with protowire
// (wireBan: only the fields the mirror's state uses, the strings left in
// the received bytes) instead of as *pb.Ban messages with every field
// copied out: at a million bans the generic decoding was the mirror's
// largest cost (BENCHMARKS.md, "Cold start at 1,000,000 bans"). The rest
// of the message (keys, revoked sessions, the envelope) is decoded
// generically, and the part's bans wait in the codec for follow to take
// (take) with the message, which then carries none.
//
// Anything the fast reader does not expect (a malformed field, a known
// field of another wire type, a string that is not UTF-8, a snapshot
// field twice or beside another payload) makes it decode the message
// generically instead, exactly as gRPC's proto codec does, errors
// included: the state built is the same either way
// (TestWireSnapshotMatchesGeneric, FuzzWatchCodec).
//
// One codec serves one stream, used only by the goroutine that calls its
// Recv (gRPC decodes in RecvMsg).
type watchCodec struct {
	bans []wireBan // of the message last decoded, until taken
}

func (*watchCodec) Name() string { return "proto" } // the content-subtype sent: as gRPC's own codec

func (*watchCodec) Marshal(v any) (mem.BufferSlice, error) {
	return encoding.GetCodecV2("proto").Marshal(v)
}

func (c *watchCodec) Unmarshal(data mem.BufferSlice, v any) error {
	c.bans = nil
	resp, ok := v.(*pb.WatchResponse)
	if !ok {
		return encoding.GetCodecV2("proto").Unmarshal(data, v)
	}
	// A copy of its own: the bans' strings point into it until the state
	// builder has copied what it keeps (the builder copies, see
	// addBanFields); gRPC reuses its buffers.
	buf := data.Materialize()
	bans, ok := decodeWatchResponseWire(buf, resp)
	if !ok {
		return proto.Unmarshal(buf, resp)
	}
	c.bans = bans
	return nil
}

// take returns the bans of the message last decoded: the bans of a
// snapshot part the message's Snapshot does not hold (nil for any other).
func (c *watchCodec) take() []wireBan {
	b := c.bans
	c.bans = nil
	return b
}

// Field numbers read by hand (proto/portcullis/v1/event_service.proto,
// types.proto, google/protobuf/timestamp.proto).
const (
	wireResponseSnapshot   protowire.Number = 4 // WatchResponse.snapshot
	wireResponseChange     protowire.Number = 5 // WatchResponse.change
	wireResponseCheckpoint protowire.Number = 6 // WatchResponse.checkpoint
	wireSnapshotBans       protowire.Number = 1 // Snapshot.bans

	wireBanID           protowire.Number = 1
	wireBanTenantID     protowire.Number = 2
	wireBanSubject      protowire.Number = 3
	wireBanCapabilities protowire.Number = 4
	wireBanExpireTime   protowire.Number = 9
	wireBanState        protowire.Number = 13

	wireSubjectUserID   protowire.Number = 1
	wireSubjectIP       protowire.Number = 2
	wireSubjectDeviceID protowire.Number = 3
)

// wireBan is what the state keeps of a pb.Ban, read from its encoding.
// id, tenant and value point into the received message (wireString): the
// builder copies what it keeps.
type wireBan struct {
	id, tenant string
	subject    protowire.Number // the Subject field set last (wireSubject*); 0: none
	value      string
	caps       []string // copies
	expire     int64    // unixNanos(expire_time)
}

// decodeWatchResponseWire decodes buf into resp, all but its snapshot's
// bans, returned apart. ok is false when buf is not a snapshot part or
// holds something the fast reader leaves to proto.Unmarshal; resp is then
// to be decoded generically.
func decodeWatchResponseWire(buf []byte, resp *pb.WatchResponse) (bans []wireBan, ok bool) {
	var snapshot []byte
	var rest []byte // the envelope's other fields
	for b := buf; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil, false
		}
		switch num {
		case wireResponseSnapshot:
			if typ != protowire.BytesType || snapshot != nil {
				return nil, false // merged parts: the generic decoder's business
			}
			v, _ := protowire.ConsumeBytes(b[n:])
			snapshot = v
		case wireResponseChange, wireResponseCheckpoint:
			return nil, false
		default:
			rest = append(rest, b[:n+m]...)
		}
		b = b[n+m:]
	}
	if snapshot == nil {
		return nil, false
	}
	bans = make([]wireBan, 0, countBans(snapshot)) // grown, the slice was the reader's largest cost
	var others []byte                              // the snapshot's fields but its bans
	for b := snapshot; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil, false
		}
		if num == wireSnapshotBans {
			if typ != protowire.BytesType {
				return nil, false
			}
			v, _ := protowire.ConsumeBytes(b[n:])
			x, ok := decodeBanWire(v)
			if !ok {
				return nil, false
			}
			bans = append(bans, x)
		} else {
			others = append(others, b[:n+m]...)
		}
		b = b[n+m:]
	}
	if proto.Unmarshal(rest, resp) != nil {
		return nil, false
	}
	snap := new(pb.Snapshot)
	if proto.Unmarshal(others, snap) != nil {
		return nil, false
	}
	resp.Payload = &pb.WatchResponse_Snapshot{Snapshot: snap}
	return bans, true
}

// countBans counts the bans field's elements in an encoded Snapshot (a
// malformed one is found by the reader after).
func countBans(b []byte) int {
	n := 0
	for len(b) > 0 {
		num, typ, k := protowire.ConsumeTag(b)
		if k < 0 {
			return n
		}
		m := protowire.ConsumeFieldValue(num, typ, b[k:])
		if m < 0 {
			return n
		}
		if num == wireSnapshotBans {
			n++
		}
		b = b[k+m:]
	}
	return n
}

// decodeBanWire reads what the state keeps of one encoded pb.Ban, with
// the generic decoder's meaning: a scalar or string read last wins, a
// repeated one appends, a message field twice merges (so its fields,
// each, last wins), an unknown field is skipped. ok is false where
// proto.Unmarshal would fail or read the field otherwise than this does.
func decodeBanWire(b []byte) (x wireBan, ok bool) {
	var expSecs, expNanos int64
	var hasExpire bool
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return x, false
		}
		b = b[n:]
		switch {
		case num == wireBanState:
			if typ != protowire.VarintType {
				return x, false
			}
		case num >= 1 && num <= 12:
			if typ != protowire.BytesType {
				return x, false
			}
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return x, false
			}
			b = b[m:]
			switch num {
			case wireBanSubject:
				if !decodeSubjectWire(v, &x) {
					return x, false
				}
			case wireBanExpireTime:
				hasExpire = true
				if !decodeTimestampWire(v, &expSecs, &expNanos) {
					return x, false
				}
			case 8, 10: // create_time, lift_time: not kept, but checked
				var s, ns int64
				if !decodeTimestampWire(v, &s, &ns) {
					return x, false
				}
			default: // the string fields
				if !utf8.Valid(v) {
					return x, false
				}
				switch num {
				case wireBanID:
					x.id = wireString(v)
				case wireBanTenantID:
					x.tenant = wireString(v)
				case wireBanCapabilities:
					x.caps = append(x.caps, string(v))
				}
			}
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return x, false
		}
		b = b[m:]
	}
	if hasExpire {
		x.expire = timeNanos(time.Unix(expSecs, int64(int32(expNanos))).UTC())
	}
	return x, true
}

// decodeSubjectWire reads a Subject into x: its oneof's field read last
// wins, as when the generic decoder merges one into another.
func decodeSubjectWire(b []byte, x *wireBan) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if num >= wireSubjectUserID && num <= wireSubjectDeviceID {
			if typ != protowire.BytesType {
				return false
			}
			v, m := protowire.ConsumeBytes(b)
			if m < 0 || !utf8.Valid(v) {
				return false
			}
			x.subject, x.value = num, wireString(v)
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return false
		}
		b = b[m:]
	}
	return true
}

// decodeTimestampWire reads a google.protobuf.Timestamp's seconds and
// nanos (each, when present, over what was there).
func decodeTimestampWire(b []byte, secs, nanos *int64) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if num == 1 || num == 2 {
			if typ != protowire.VarintType {
				return false
			}
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return false
			}
			if num == 1 {
				*secs = int64(v)
			} else {
				*nanos = int64(int32(v))
			}
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return false
		}
		b = b[m:]
	}
	return true
}

// wireString is b as a string without a copy: b is part of a message
// buffer of the codec's own (watchCodec.Unmarshal), never written again.
func wireString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
