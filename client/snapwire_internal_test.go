package client

import (
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// dumpState lists everything a state holds, sorted, to compare states
// built two ways.
func dumpState(s *state) []string {
	var out []string
	tenant := func(i uint32) string {
		if int(i) < len(s.names.tenants) {
			return s.names.tenants[i]
		}
		return fmt.Sprintf("#%d", i)
	}
	rec := func(where string, r *banRec) {
		var caps []string
		if r.ext != nil {
			caps = r.ext.caps
		}
		out = append(out, fmt.Sprintf("ban %s tenant=%q id=%q caps=%q expire=%d", where, tenant(r.tenant), r.banID(), caps, r.expire))
	}
	s.users.all(func(e *entry[string, banRec]) { rec("user:"+e.k, &e.v) })
	s.devices.all(func(e *entry[string, banRec]) { rec("device:"+e.k, &e.v) })
	s.ips.all(func(p netip.Prefix, r *banRec) { rec("ip:"+p.String(), r) })
	s.revoked.all(func(e *entry[string, int64]) { out = append(out, fmt.Sprintf("revoked %q %d", e.k, e.v)) })
	for id, k := range s.keys {
		out = append(out, fmt.Sprintf("key %q %x %d", id, k.pub, k.until))
	}
	slices.Sort(out)
	return append(out, fmt.Sprintf("store=%s rev=%d nBans=%d nextExpiry=%d keyGen=%d", s.storeID, s.rev, s.nBans, s.nextExpiry, s.keyGen))
}

// buildBoth builds the state of a snapshot given as its parts' encodings,
// once as gRPC's proto codec decodes them and once through watchCodec. It
// returns the two dumps, whether any part took the fast path, and the
// first decoding error of each.
func buildBoth(parts [][]byte) (generic, fast []string, fastUsed bool, errGeneric, errFast error) {
	g, f := newSnapshotBuilder("s", 1), newSnapshotBuilder("s", 1)
	for _, enc := range parts {
		var rg pb.WatchResponse
		if err := proto.Unmarshal(enc, &rg); err != nil && errGeneric == nil {
			errGeneric = err
		} else if err == nil {
			g.addPart(rg.GetSnapshot(), nil)
		}
		var c watchCodec
		var rf pb.WatchResponse
		if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(slices.Clone(enc))}, &rf); err != nil && errFast == nil {
			errFast = err
		} else if err == nil {
			bans := c.take()
			fastUsed = fastUsed || bans != nil
			// What the codec leaves in the message is the generic
			// decoding, less the bans when it read them apart.
			want := proto.Clone(&rg).(*pb.WatchResponse)
			if s := want.GetSnapshot(); s != nil && bans != nil {
				s.Bans = nil
			}
			if !proto.Equal(want, &rf) {
				errFast = fmt.Errorf("codec message %v, want %v", &rf, want)
			}
			f.addPart(rf.GetSnapshot(), bans)
		}
	}
	return dumpState(g.finish(0)), dumpState(f.finish(0)), fastUsed, errGeneric, errFast
}

func randomWireBan(r *rand.Rand, n int) *pb.Ban {
	var raw [16]byte
	raw[0], raw[15] = byte(n>>8), byte(n)
	id := banIDPrefix + idEncoding.EncodeToString(raw[:])
	switch r.IntN(20) {
	case 0:
		id = fmt.Sprintf("other-%d", r.IntN(50)) // not compact; maybe a duplicate
	case 1:
		id = ""
	case 2:
		raw[15] = byte(r.IntN(256)) // out of order, maybe a duplicate
		id = banIDPrefix + idEncoding.EncodeToString(raw[:])
	}
	b := &pb.Ban{
		BanId: id, TenantId: []string{"acme", "acme", "acme", "*", "beta", ""}[r.IntN(6)],
		Reason: "r", Policy: "p", CreatedBy: "ops", CreateTime: timestamppb.New(timestamppb.Now().AsTime()),
		State: pb.BanState_BAN_STATE_ACTIVE,
	}
	v := fmt.Sprintf("v%d", r.IntN(200))
	switch r.IntN(8) {
	case 0:
		b.Subject = &pb.Subject{Kind: &pb.Subject_DeviceId{DeviceId: v}}
	case 1:
		b.Subject = &pb.Subject{Kind: &pb.Subject_Ip{Ip: []string{"10.0.0.0/8", "2001:db8::1", "203.0.113.7", "bad", "::ffff:10.0.0.0/104", "0.0.0.0/0"}[r.IntN(6)]}}
	case 2:
		// none
	case 3:
		b.Subject = &pb.Subject{Kind: &pb.Subject_UserId{UserId: ""}}
	default:
		b.Subject = &pb.Subject{Kind: &pb.Subject_UserId{UserId: v}}
	}
	if r.IntN(4) == 0 {
		b.Capabilities = []string{"post", "comment", "post"}[:1+r.IntN(3)]
	}
	switch r.IntN(4) {
	case 0:
		b.ExpireTime = &timestamppb.Timestamp{Seconds: r.Int64N(1 << 34), Nanos: r.Int32N(1e9)}
	case 1:
		b.ExpireTime = &timestamppb.Timestamp{} // set, the epoch
	case 2:
		b.ExpireTime = &timestamppb.Timestamp{Seconds: 1 << 40} // beyond int64 nanoseconds: clamped
	}
	if r.IntN(10) == 0 {
		b.LiftTime, b.LiftedBy, b.LiftReason = timestamppb.Now(), "x", "y"
	}
	return b
}

func randomSnapshotParts(t testing.TB, r *rand.Rand) [][]byte {
	var parts [][]byte
	n := 0
	np := 1 + r.IntN(4)
	for p := range np {
		snap := &pb.Snapshot{More: p < np-1}
		if p == 0 {
			pub := make([]byte, ed25519.PublicKeySize)
			pub[0] = byte(r.IntN(256))
			snap.Keys = []*pb.VerificationKey{{KeyId: "k1", Algorithm: "EdDSA", PublicKey: pub, VerifyUntil: timestamppb.New(timestamppb.Now().AsTime())}}
		}
		for range r.IntN(60) {
			n++
			snap.Bans = append(snap.Bans, randomWireBan(r, n))
		}
		for range r.IntN(3) {
			snap.RevokedSessions = append(snap.RevokedSessions, &pb.RevokedSession{SessionId: fmt.Sprintf("s%d", r.IntN(5)), AccessExpireTime: &timestamppb.Timestamp{Seconds: 1 << 31}})
		}
		enc, err := proto.Marshal(&pb.WatchResponse{StoreId: "s", Revision: 1, Payload: &pb.WatchResponse_Snapshot{Snapshot: snap}})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, enc)
	}
	return parts
}

// TestWireSnapshotMatchesGeneric: random snapshots give the same state
// decoded by the watch codec as by gRPC's proto codec, and the codec's
// fast path is taken for them.
func TestWireSnapshotMatchesGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 300 {
		parts := randomSnapshotParts(t, r)
		g, f, used, eg, ef := buildBoth(parts)
		if eg != nil || ef != nil {
			t.Fatalf("snapshot %d: errors %v / %v", i, eg, ef)
		}
		if !slices.Equal(g, f) {
			t.Fatalf("snapshot %d: states differ\n generic %q\n codec   %q", i, g, f)
		}
		if !used && len(g) > 1 {
			t.Fatalf("snapshot %d: the codec never read bans apart", i)
		}
	}
}

// TestWireSnapshotFallsBack: what the fast reader leaves to the generic
// decoder is decoded as gRPC's proto codec does, errors included.
func TestWireSnapshotFallsBack(t *testing.T) {
	ban := protowire.AppendTag(nil, 1, protowire.BytesType)
	ban = protowire.AppendString(ban, "ban_1")
	wrap := func(ban []byte) []byte {
		snap := protowire.AppendTag(nil, wireSnapshotBans, protowire.BytesType)
		snap = protowire.AppendBytes(snap, ban)
		resp := protowire.AppendTag(nil, wireResponseSnapshot, protowire.BytesType)
		return protowire.AppendBytes(resp, snap)
	}
	subject := func(num protowire.Number, typ protowire.Type, v []byte) []byte {
		s := protowire.AppendTag(nil, num, typ)
		if typ == protowire.VarintType {
			s = protowire.AppendVarint(s, 1)
		} else {
			s = protowire.AppendBytes(s, v)
		}
		b := protowire.AppendTag(slices.Clone(ban), wireBanSubject, protowire.BytesType)
		return protowire.AppendBytes(b, s)
	}
	cases := map[string][]byte{
		"user":                  wrap(subject(1, protowire.BytesType, []byte("u"))),
		"subject not UTF-8":     wrap(subject(1, protowire.BytesType, []byte{0xff})),
		"subject wire type":     wrap(subject(2, protowire.VarintType, nil)),
		"ban ID as varint":      wrap(protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 7)),
		"unknown ban field":     wrap(protowire.AppendVarint(protowire.AppendTag(slices.Clone(subject(1, protowire.BytesType, []byte("u"))), 99, protowire.VarintType), 7)),
		"truncated ban":         wrap(ban[:len(ban)-1]),
		"reason not UTF-8":      wrap(protowire.AppendBytes(protowire.AppendTag(subject(1, protowire.BytesType, []byte("u")), 5, protowire.BytesType), []byte{0xc0})),
		"two snapshots":         append(wrap(subject(1, protowire.BytesType, []byte("a"))), wrap(subject(3, protowire.BytesType, []byte("b")))...),
		"snapshot then change":  append(wrap(subject(1, protowire.BytesType, []byte("a"))), protowire.AppendBytes(protowire.AppendTag(nil, wireResponseChange, protowire.BytesType), nil)...),
		"change then snapshot":  append(protowire.AppendBytes(protowire.AppendTag(nil, wireResponseChange, protowire.BytesType), nil), wrap(subject(1, protowire.BytesType, []byte("a")))...),
		"expire as bytes":       wrap(protowire.AppendBytes(protowire.AppendTag(subject(1, protowire.BytesType, []byte("u")), 9, protowire.BytesType), protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.BytesType), 1))),
		"state as bytes":        wrap(protowire.AppendBytes(protowire.AppendTag(subject(1, protowire.BytesType, []byte("u")), 13, protowire.BytesType), nil)),
		"envelope not UTF-8":    append(protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte{0xff}), wrap(subject(1, protowire.BytesType, []byte("a")))...),
		"a snapshot, no bans":   protowire.AppendBytes(protowire.AppendTag(nil, wireResponseSnapshot, protowire.BytesType), nil),
		"garbage":               {0xff, 0xff, 0xff},
		"two subjects (merged)": wrap(append(subject(1, protowire.BytesType, []byte("a")), subject(3, protowire.BytesType, []byte("d"))[len(ban):]...)),
	}
	for name, enc := range cases {
		t.Run(name, func(t *testing.T) {
			g, f, _, eg, ef := buildBoth([][]byte{enc})
			if (eg != nil) != (ef != nil) || (eg == nil && !slices.Equal(g, f)) {
				t.Fatalf("generic %q (error %v)\ncodec   %q (error %v)", g, eg, f, ef)
			}
		})
	}
}

func FuzzWatchCodec(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 8 {
		for _, p := range randomSnapshotParts(f, r) {
			f.Add(p)
		}
	}
	f.Fuzz(func(t *testing.T, enc []byte) {
		g, fs, _, eg, ef := buildBoth([][]byte{enc})
		if (eg != nil) != (ef != nil) {
			t.Fatalf("generic error %v, codec error %v", eg, ef)
		}
		if eg == nil && !slices.Equal(g, fs) {
			t.Fatalf("states differ\n generic %q\n codec   %q", g, fs)
		}
	})
}

// BenchmarkSnapshotPartDecode: one 10,000-ban snapshot part (about what
// a 1 MiB part holds) decoded as gRPC's proto codec does and as the
// mirror's watch codec does, then added to a new state.
func BenchmarkSnapshotPartDecode(b *testing.B) {
	snap := &pb.Snapshot{More: true}
	for i := range 10000 {
		var raw [16]byte
		raw[0], raw[14], raw[15] = 1, byte(i>>8), byte(i)
		snap.Bans = append(snap.Bans, &pb.Ban{
			BanId: banIDPrefix + idEncoding.EncodeToString(raw[:]), TenantId: "acme",
			Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: fmt.Sprintf("user-%06d", i)}},
			Reason:  "spam", Policy: "tos-4.2", CreatedBy: "bench",
			CreateTime: timestamppb.Now(), State: pb.BanState_BAN_STATE_ACTIVE,
		})
	}
	enc, err := proto.Marshal(&pb.WatchResponse{StoreId: "s", Revision: 1, Payload: &pb.WatchResponse_Snapshot{Snapshot: snap}})
	if err != nil {
		b.Fatal(err)
	}
	data := mem.BufferSlice{mem.SliceBuffer(enc)}
	b.Run("generic", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r pb.WatchResponse
			if err := encodingProto().Unmarshal(data, &r); err != nil {
				b.Fatal(err)
			}
			newSnapshotBuilder("s", 1).addPart(r.GetSnapshot(), nil)
		}
	})
	b.Run("codec", func(b *testing.B) {
		b.ReportAllocs()
		var c watchCodec
		for b.Loop() {
			var r pb.WatchResponse
			if err := c.Unmarshal(data, &r); err != nil {
				b.Fatal(err)
			}
			newSnapshotBuilder("s", 1).addPart(r.GetSnapshot(), c.take())
		}
	})
}

func encodingProto() encoding.CodecV2 { return encoding.GetCodecV2("proto") }
