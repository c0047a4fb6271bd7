package client

import (
	"math/rand/v2"
	"testing"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// compactIDReference is what compactID computes, with the base32 package.
func compactIDReference(id string) ([16]byte, bool) {
	var b [16]byte
	if len(id) != len(banIDPrefix)+26 || id[:len(banIDPrefix)] != banIDPrefix {
		return b, false
	}
	n, err := idEncoding.Decode(b[:], []byte(id[len(banIDPrefix):]))
	if err != nil || n != len(b) || idEncoding.EncodeToString(b[:]) != id[len(banIDPrefix):] {
		return b, false
	}
	return b, true
}

// TestCompactID: compactID takes exactly the canonical IDs, with their
// bytes.
func TestCompactID(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	chars := idAlphabet + "ABZilou_\n=\x00\xff"
	for i := range 20000 {
		var id string
		switch i % 3 {
		case 0: // canonical
			var b [16]byte
			for j := range b {
				b[j] = byte(r.Uint32())
			}
			id = banIDPrefix + idEncoding.EncodeToString(b[:])
		case 1: // any alphabet characters: the last one's 2 low bits are often set
			buf := []byte(banIDPrefix)
			for range 26 {
				buf = append(buf, idAlphabet[r.IntN(len(idAlphabet))])
			}
			id = string(buf)
		default: // anything
			buf := []byte(banIDPrefix)
			for range 25 + r.IntN(3) {
				buf = append(buf, chars[r.IntN(len(chars))])
			}
			id = string(buf)
		}
		got, gotOK := compactID(id)
		want, wantOK := compactIDReference(id)
		if gotOK != wantOK || (gotOK && got != want) {
			t.Fatalf("compactID(%q) = %x, %v; want %x, %v", id, got, gotOK, want, wantOK)
		}
	}
}

// TestSnapshotBuilderDuplicateIDs: bans out of ID order, in parts, some
// with the ID of an earlier ban (under another subject): the first of an
// ID is indexed, the later ones are not, as in ID order.
func TestSnapshotBuilderDuplicateIDs(t *testing.T) {
	id := func(n byte) string {
		var b [16]byte
		b[15] = n
		return banIDPrefix + idEncoding.EncodeToString(b[:])
	}
	ban := func(n byte, user string) *pb.Ban {
		return &pb.Ban{BanId: id(n), TenantId: "t", Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: user}}}
	}
	sb := newSnapshotBuilder("s", 1)
	sb.addPart(&pb.Snapshot{Bans: []*pb.Ban{ban(1, "a"), ban(2, "b"), ban(5, "c"), ban(2, "dup-in-order")}, More: true}, nil)
	sb.addPart(&pb.Snapshot{Bans: []*pb.Ban{ban(3, "d"), ban(1, "dup-out-of-order"), ban(5, "dup-later"), ban(4, "e"), ban(4, "dup-after-map")}}, nil)
	s := sb.finish(0)
	if s.nBans != 5 {
		t.Errorf("nBans = %d, want 5", s.nBans)
	}
	for _, u := range []string{"a", "b", "c", "d", "e"} {
		if _, ok := s.users.get(strHash(u), u); !ok {
			t.Errorf("user %q not indexed", u)
		}
	}
	for _, u := range []string{"dup-in-order", "dup-out-of-order", "dup-later", "dup-after-map"} {
		if _, ok := s.users.get(strHash(u), u); ok {
			t.Errorf("user %q indexed: its ban ID was taken", u)
		}
	}
}
