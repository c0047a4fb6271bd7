package server

import (
	"errors"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

// Field numbers of portcullis.v1.Ban, Subject and google.protobuf.Timestamp
// (proto/portcullis/v1/types.proto), for appendBanWire.
const (
	fieldBanID           protowire.Number = 1
	fieldBanTenantID     protowire.Number = 2
	fieldBanSubject      protowire.Number = 3
	fieldBanCapabilities protowire.Number = 4
	fieldBanReason       protowire.Number = 5
	fieldBanPolicy       protowire.Number = 6
	fieldBanCreatedBy    protowire.Number = 7
	fieldBanCreateTime   protowire.Number = 8
	fieldBanExpireTime   protowire.Number = 9
	fieldBanLiftTime     protowire.Number = 10
	fieldBanLiftedBy     protowire.Number = 11
	fieldBanLiftReason   protowire.Number = 12
	fieldBanState        protowire.Number = 13

	fieldSubjectUserID   protowire.Number = 1
	fieldSubjectIP       protowire.Number = 2
	fieldSubjectDeviceID protowire.Number = 3

	fieldTimestampSeconds protowire.Number = 1
	fieldTimestampNanos   protowire.Number = 2
)

// errBanNotUTF8 is what proto.Marshal refuses too: a proto3 string that
// is not valid UTF-8 (the store holds none: the authority validates what
// it writes).
var errBanNotUTF8 = errors.New("server: a ban's string field is not valid UTF-8")

// appendBanWire appends the protobuf encoding of banPB(*b, now), the
// mapping in convert.go, without building the message: a snapshot encodes
// every ban once, and the *pb.Ban, its Subject and its Timestamps were
// most of the authority's allocations and a quarter of its CPU at a
// million bans (BENCHMARKS.md, "Cold start at 1,000,000 bans").
// TestBanWireMatchesBanPB and FuzzBanWire hold the two to the same
// message; a field added to Ban must be added to both.
func appendBanWire(buf []byte, b *storage.Ban, now time.Time) ([]byte, error) {
	if !banStringsValid(b) {
		return buf, errBanNotUTF8
	}
	buf = appendStringField(buf, fieldBanID, b.ID)
	buf = appendStringField(buf, fieldBanTenantID, b.TenantID)
	// The subject is a oneof: its one field is sent even when empty.
	num := fieldSubjectIP
	switch b.Kind {
	case storage.SubjectUser:
		num = fieldSubjectUserID
	case storage.SubjectDevice:
		num = fieldSubjectDeviceID
	}
	buf = protowire.AppendTag(buf, fieldBanSubject, protowire.BytesType)
	buf = protowire.AppendVarint(buf, uint64(protowire.SizeTag(num)+protowire.SizeBytes(len(b.Value))))
	buf = protowire.AppendTag(buf, num, protowire.BytesType)
	buf = protowire.AppendString(buf, b.Value)
	for _, c := range b.Capabilities { // repeated: each sent, even empty
		buf = protowire.AppendTag(buf, fieldBanCapabilities, protowire.BytesType)
		buf = protowire.AppendString(buf, c)
	}
	buf = appendStringField(buf, fieldBanReason, b.Reason)
	buf = appendStringField(buf, fieldBanPolicy, b.Policy)
	buf = appendStringField(buf, fieldBanCreatedBy, b.CreatedBy)
	buf = appendTimeField(buf, fieldBanCreateTime, b.CreateTime)
	buf = appendTimeField(buf, fieldBanExpireTime, b.ExpireTime)
	buf = appendTimeField(buf, fieldBanLiftTime, b.LiftTime)
	buf = appendStringField(buf, fieldBanLiftedBy, b.LiftedBy)
	buf = appendStringField(buf, fieldBanLiftReason, b.LiftReason)
	if st := banStates[authority.StateAt(*b, now)]; st != pb.BanState_BAN_STATE_UNSPECIFIED {
		buf = protowire.AppendTag(buf, fieldBanState, protowire.VarintType)
		buf = protowire.AppendVarint(buf, uint64(st))
	}
	return buf, nil
}

func banStringsValid(b *storage.Ban) bool {
	for _, s := range [...]string{b.ID, b.TenantID, b.Value, b.Reason, b.Policy, b.CreatedBy, b.LiftedBy, b.LiftReason} {
		if !utf8.ValidString(s) {
			return false
		}
	}
	for _, c := range b.Capabilities {
		if !utf8.ValidString(c) {
			return false
		}
	}
	return true
}

// appendStringField appends a proto3 string field: nothing when empty.
func appendStringField(buf []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return buf
	}
	buf = protowire.AppendTag(buf, num, protowire.BytesType)
	return protowire.AppendString(buf, s)
}

// appendTimeField appends ts(t) as field num: nothing for the zero time,
// else a google.protobuf.Timestamp (as timestamppb.New builds it), sent
// even when both its fields are zero (the Unix epoch).
func appendTimeField(buf []byte, num protowire.Number, t time.Time) []byte {
	if t.IsZero() {
		return buf
	}
	secs, nanos := t.Unix(), int64(t.Nanosecond())
	n := 0
	if secs != 0 {
		n += protowire.SizeTag(fieldTimestampSeconds) + protowire.SizeVarint(uint64(secs))
	}
	if nanos != 0 {
		n += protowire.SizeTag(fieldTimestampNanos) + protowire.SizeVarint(uint64(nanos))
	}
	buf = protowire.AppendTag(buf, num, protowire.BytesType)
	buf = protowire.AppendVarint(buf, uint64(n))
	if secs != 0 {
		buf = protowire.AppendTag(buf, fieldTimestampSeconds, protowire.VarintType)
		buf = protowire.AppendVarint(buf, uint64(secs))
	}
	if nanos != 0 {
		buf = protowire.AppendTag(buf, fieldTimestampNanos, protowire.VarintType)
		buf = protowire.AppendVarint(buf, uint64(nanos))
	}
	return buf
}
