package server

import (
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

// checkBanWire fails unless appendBanWire's bytes decode to exactly the
// message banPB builds, and it refuses what proto.Marshal refuses.
func checkBanWire(t *testing.T, b storage.Ban, now time.Time) {
	t.Helper()
	want := banPB(b, now)
	_, wantErr := proto.Marshal(want)
	prefix := []byte{0xAA} // appended after what is there, not over it
	got, err := appendBanWire(prefix, &b, now)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("ban %+v: appendBanWire error %v, proto.Marshal error %v", b, err, wantErr)
	}
	if err != nil {
		return
	}
	if got[0] != 0xAA {
		t.Fatalf("ban %+v: the buffer's first byte overwritten", b)
	}
	var dec pb.Ban
	if err := proto.Unmarshal(got[1:], &dec); err != nil {
		t.Fatalf("ban %+v: the hand encoding does not decode: %v", b, err)
	}
	if !proto.Equal(&dec, want) {
		t.Fatalf("ban %+v:\n hand encoded %v\n banPB       %v", b, &dec, want)
	}
	if len(dec.ProtoReflect().GetUnknown()) != 0 {
		t.Fatalf("ban %+v: unknown fields in the hand encoding", b)
	}
}

func TestBanWireMatchesBanPB(t *testing.T) {
	now := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	created := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	full := storage.Ban{
		ID: "ban_01J0000000000000000000000", TenantID: "acme", Kind: storage.SubjectUser, Value: "u-1",
		Capabilities: []string{"post", "", "comment"}, Reason: "spam", Policy: "tos-4.2",
		CreatedBy: "ops", CreatorAddr: "203.0.113.1:5000", CreateTime: created,
		ExpireTime: now.Add(time.Hour), LiftTime: now.Add(-time.Minute), LiftedBy: "lead", LiftReason: "appeal",
	}
	cases := map[string]storage.Ban{
		"every field, lifted": full,
		"zero":                {},
		"user, full ban, permanent": {
			ID: "ban_1", TenantID: "acme", Kind: storage.SubjectUser, Value: "u-1", CreateTime: created,
		},
		"every tenant, ip": {
			ID: "ban_2", TenantID: storage.AllTenants, Kind: storage.SubjectIP, Value: "2001:db8::/32",
			CreateTime: created, ExpireTime: now.Add(time.Second),
		},
		"device, expired": {
			ID: "ban_3", TenantID: "t", Kind: storage.SubjectDevice, Value: "d-9",
			CreateTime: created, ExpireTime: now,
		},
		"empty subject value":   {ID: "ban_4", Kind: storage.SubjectUser},
		"empty device value":    {ID: "ban_4", Kind: storage.SubjectDevice},
		"unknown kind (as ip)":  {ID: "ban_5", Kind: "other", Value: "x"},
		"unix epoch":            {ID: "ban_6", CreateTime: time.Unix(0, 0), ExpireTime: time.Unix(0, 1)},
		"before the epoch":      {ID: "ban_7", CreateTime: time.Unix(-5, 999_999_999), LiftTime: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)},
		"year 9999":             {ID: "ban_8", ExpireTime: time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC)},
		"another zone":          {ID: "ban_9", CreateTime: created.In(time.FixedZone("x", 3600))},
		"capabilities only":     {Capabilities: []string{"a"}},
		"reason and policy":     {ID: "ban_10", Reason: "r", Policy: "p"},
		"lift fields, not lift": {ID: "ban_11", LiftedBy: "x", LiftReason: "y"},
		"non-ASCII":             {ID: "ban_é", Value: "日本", Reason: "ünïcode"},
		"invalid UTF-8 value":   {ID: "ban_12", Kind: storage.SubjectUser, Value: "\xff"},
		"invalid UTF-8 cap":     {ID: "ban_13", Capabilities: []string{"ok", "\xc0"}},
		"invalid UTF-8 reason":  {ID: "ban_14", LiftReason: "\xfe"},
		"long":                  {ID: "ban_15", Reason: string(make([]byte, 300))},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) { checkBanWire(t, b, now) })
	}
}

// TestBanWireRandom compares the two encodings on random bans.
func TestBanWireRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	for range 5000 {
		checkBanWire(t, randomBan(r, now), now)
	}
}

func randomBan(r *rand.Rand, now time.Time) storage.Ban {
	str := func() string {
		if r.IntN(3) == 0 {
			return ""
		}
		b := make([]byte, r.IntN(20))
		for i := range b {
			b[i] = byte(r.IntN(128))
		}
		if r.IntN(50) == 0 {
			b = append(b, 0xff)
		}
		return string(b)
	}
	tm := func() time.Time {
		switch r.IntN(4) {
		case 0:
			return time.Time{}
		case 1:
			return now.Add(time.Duration(r.Int64N(int64(48*time.Hour))) - 24*time.Hour)
		case 2:
			return time.Unix(r.Int64N(1<<40)-1<<39, r.Int64N(1e9))
		}
		return now
	}
	b := storage.Ban{
		ID: str(), TenantID: str(), Kind: []storage.SubjectKind{storage.SubjectUser, storage.SubjectIP, storage.SubjectDevice, ""}[r.IntN(4)],
		Value: str(), Reason: str(), Policy: str(), CreatedBy: str(), CreatorAddr: str(),
		CreateTime: tm(), ExpireTime: tm(), LiftTime: tm(), LiftedBy: str(), LiftReason: str(),
	}
	for range r.IntN(4) {
		b.Capabilities = append(b.Capabilities, str())
	}
	return b
}

func FuzzBanWire(f *testing.F) {
	f.Add("ban_1", "acme", 0, "u-1", "post", "spam", "tos", "ops", int64(1e9), int64(0), int64(-1), uint32(5), "", "")
	f.Add("", "*", 1, "10.0.0.0/8", "", "", "", "", int64(0), int64(2e9), int64(0), uint32(0), "x", "y")
	f.Fuzz(func(t *testing.T, id, tenant string, kind int, value, capability, reason, policy, by string,
		create, expire, lift int64, nanos uint32, liftedBy, liftReason string) {
		at := func(sec int64) time.Time {
			if sec == -1 {
				return time.Time{}
			}
			// Within google.protobuf.Timestamp's years 1 to 9999, as the
			// store's times are.
			return time.Unix(sec%253402300799, int64(nanos%1e9)).UTC()
		}
		kinds := []storage.SubjectKind{storage.SubjectUser, storage.SubjectIP, storage.SubjectDevice}
		b := storage.Ban{
			ID: id, TenantID: tenant, Kind: kinds[uint(kind)%3], Value: value,
			Reason: reason, Policy: policy, CreatedBy: by,
			CreateTime: at(create), ExpireTime: at(expire), LiftTime: at(lift), LiftedBy: liftedBy, LiftReason: liftReason,
		}
		if capability != "" {
			b.Capabilities = []string{capability, ""}
		}
		checkBanWire(t, b, time.Unix(1_800_000_000, 0))
	})
}

// BenchmarkBanEncode: one snapshot ban, as the snapshot encoded it before
// (banPB, then proto.Marshal) and as it does now (appendBanWire).
func BenchmarkBanEncode(b *testing.B) {
	now := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	ban := storage.Ban{
		ID: "ban_01JEXAMPLE0000000000000000", TenantID: "acme", Kind: storage.SubjectUser, Value: "user-123456",
		Reason: "spam", Policy: "tos-4.2", CreatedBy: "bench", CreateTime: now.Add(-time.Hour),
	}
	b.Run("message", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = (proto.MarshalOptions{}).MarshalAppend(buf[:0], banPB(ban, now)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wire", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = appendBanWire(buf[:0], &ban, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}
