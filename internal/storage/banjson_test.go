package storage_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// jsonBans are bans as the backends store them: json.Marshal of UTC times.
func jsonBans() []storage.Ban {
	t := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	return []storage.Ban{
		{ID: "ban_01", TenantID: "public", Kind: storage.SubjectUser, Value: "alice", Reason: "spam", CreatedBy: "admin", CreateTime: t},
		{ID: "ban_02", TenantID: "public", Kind: storage.SubjectUser, Value: "bob", Reason: "spam", CreatedBy: "admin", CreateTime: t.Add(123456789)},
		{ID: "ban_03", TenantID: "t1", Kind: storage.SubjectIP, Value: "203.0.113.0/24", Capabilities: []string{"post", "comment"},
			Reason: "botnet", Policy: "tos-4.2", CreatedBy: "ops", CreatorAddr: "192.0.2.1:5000",
			CreateTime: t.Add(time.Millisecond), ExpireTime: t.Add(7 * 24 * time.Hour)},
		{ID: "ban_04", TenantID: "*", Kind: storage.SubjectDevice, Value: "dev-ü-日本", Capabilities: []string{},
			CreateTime: t.Add(time.Nanosecond), LiftTime: t.Add(time.Hour + 10*time.Microsecond), LiftedBy: "ops", LiftReason: "appeal"},
		{ID: "ban_05", TenantID: "public", Kind: storage.SubjectUser, Value: "leap", CreateTime: time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.UTC)},
		{ID: "ban_06", Kind: "other", Value: "x"},
		{ID: "ban_07", TenantID: "public", Kind: storage.SubjectUser, Value: "carol", CreateTime: t,
			ExpireTime: t.Add(time.Hour), ExpiryAnnounced: t.Add(time.Hour + time.Second)},
	}
}

// TestBanDecoderMatchesJSON: the fast decoder decodes what the backends
// store, one decoder across bans that share strings, exactly as
// encoding/json does; and leaves to encoding/json what it does not handle.
func TestBanDecoderMatchesJSON(t *testing.T) {
	var d storage.BanDecoder
	for round := range 2 { // the second round reuses the strings remembered
		for _, b := range jsonBans() {
			data, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			var got, want storage.Ban
			if !d.Decode(data, &got) {
				t.Fatalf("round %d: Decode(%s) = false, want true", round, data)
			}
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round %d: Decode(%s)\n = %#v\nwant %#v", round, data, got, want)
			}
		}
	}
	for _, data := range []string{
		`{"ID":"a\"b"}`,        // an escape
		`{"ID":"a","Extra":1}`, // another key
		`{"id":"a"}`,           // encoding/json matches keys case-insensitively
		`{"ID": "a"}`,          // spacing
		`{"ID":"\xff"}`,        // invalid UTF-8, which encoding/json replaces
		`{"CreateTime":"2026-11-23T12:00:00+01:00"}`, // not UTC
		`{"CreateTime":"2026-02-30T12:00:00Z"}`,      // no such day
		`{"CreateTime":"2026-11-23T12:00:00.Z"}`,
		`{"ID":"a"} `,
		`{"ID":"a"`,
	} {
		var b storage.Ban
		if d.Decode([]byte(data), &b) {
			t.Errorf("Decode(%s) = true, want false (left to encoding/json)", data)
		}
	}
	var b storage.Ban
	if !d.Decode([]byte(`{"ID":"a","Capabilities":["x"],"Capabilities":null,"Reason":"r","Reason":null}`), &b) ||
		b.Capabilities != nil || b.Reason != "r" {
		t.Errorf("nulls: %#v; want Capabilities nil and Reason kept, as encoding/json does", b)
	}
}

// FuzzBanDecoder: whatever the fast decoder accepts, encoding/json
// accepts too, with the same result.
func FuzzBanDecoder(f *testing.F) {
	for _, b := range jsonBans() {
		data, _ := json.Marshal(b)
		f.Add(data)
	}
	f.Add([]byte(`{"Capabilities":[],"ExpireTime":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d storage.BanDecoder
		var got, want storage.Ban
		if !d.Decode(data, &got) {
			return
		}
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("Decode(%q) = true, encoding/json: %v", data, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Decode(%q)\n = %#v\nwant %#v", data, got, want)
		}
	})
}
