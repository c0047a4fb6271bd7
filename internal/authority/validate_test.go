package authority

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// fieldOf returns the field err names, or fails the test when err is not a
// FieldError matching ErrInvalidArgument.
func fieldOf(t *testing.T, what string, err error) string {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) || !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("%s: %v, want a FieldError", what, err)
	}
	return fe.Field
}

// TestBanInputRefuses: every way a ban's input can name a subject,
// capability, time or text that would mislead is refused on its field.
func TestBanInputRefuses(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	zero, past, future := time.Time{}, now.Add(-time.Nanosecond), now.Add(time.Hour)
	user := func(u string) BanInput { return BanInput{Kind: storage.SubjectUser, Value: u} }
	ip := func(s string) BanInput { return BanInput{Kind: storage.SubjectIP, Value: s} }
	with := func(in BanInput, f func(*BanInput)) BanInput { f(&in); return in }
	cases := []struct {
		name  string
		in    BanInput
		field string
	}{
		{"reason with CR and erase-line", with(user("eve"), func(b *BanInput) { b.Reason = "spam\r\x1b[2K" }), "reason"},
		{"reason with a newline", with(user("eve"), func(b *BanInput) { b.Reason = "spam\nban_x  user:bob  lifted" }), "reason"},
		{"policy with NUL", with(user("eve"), func(b *BanInput) { b.Policy = "p\x00" }), "policy"},
		{"reason with DEL", with(user("eve"), func(b *BanInput) { b.Reason = "x\x7f" }), "reason"},
		{"reason with C1 CSI", with(user("eve"), func(b *BanInput) { b.Reason = "x\u009b2K" }), "reason"},
		{"reason with RLO", with(user("eve"), func(b *BanInput) { b.Reason = "\u202edetfil" }), "reason"},
		{"reason with an isolate", with(user("eve"), func(b *BanInput) { b.Reason = "a\u2067b" }), "reason"},
		{"decomposed user", user("jose\u0301"), "subject.user_id"},
		{"zero-width space in user", user("e\u200bve"), "subject.user_id"},
		{"soft hyphen in device", BanInput{Kind: storage.SubjectDevice, Value: "dev\u00ad1"}, "subject.device_id"},
		{"bidi in tenant", with(user("eve"), func(b *BanInput) { b.TenantID = "t\u202e" }), "tenant_id"},
		{"upper-case capability", with(user("eve"), func(b *BanInput) { b.Capabilities = []string{"POST"} }), "capabilities"},
		{"Cyrillic capability", with(user("eve"), func(b *BanInput) { b.Capabilities = []string{"рost"} }), "capabilities"},
		{"expire_time year 1", with(user("eve"), func(b *BanInput) { b.ExpireTime = &zero }), "expire_time"},
		{"expire_time a nanosecond ago", with(user("eve"), func(b *BanInput) { b.ExpireTime = &past }), "expire_time"},
		{"IPv4-compatible", ip("::192.0.2.4"), "subject.ip"},
		{"NAT64", ip("64:ff9b::192.0.2.4"), "subject.ip"},
		{"NAT64 prefix", ip("64:ff9b::192.0.2.0/120"), "subject.ip"},
		{"6to4", ip("2002:c000:204::1"), "subject.ip"},
		{"6to4 site", ip("2002:c000:204::/48"), "subject.ip"},
		{"IPv4 /1 (half the internet)", ip("0.0.0.0/1"), "subject.ip"},
		{"IPv4 /7", ip("128.0.0.0/7"), "subject.ip"},
		{"IPv6 /15", ip("2000::/15"), "subject.ip"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.in.validate(now)
			if got := fieldOf(t, c.name, err); got != c.field {
				t.Fatalf("refused on %s (%v), want %s", got, err, c.field)
			}
		})
	}
	for _, in := range []BanInput{
		user("eve"), user("Eve"), user("josé"), user("ｅｖｅ"), ip("10.0.0.0/8"), ip("2001::/16"), ip("192.0.2.4"),
		with(user("eve"), func(b *BanInput) {
			b.ExpireTime = &future
			b.Reason = "spam in #general 🙄"
			b.Capabilities = []string{"post", "dm"}
		}),
	} {
		if _, err := in.validate(now); err != nil {
			t.Errorf("%+v: %v, want it accepted", in, err)
		}
	}
}

// TestEmbeddedIPv4Messages: a refused IPv6 form of IPv4 is answered with
// the IPv4 form to give instead.
func TestEmbeddedIPv4Messages(t *testing.T) {
	for in, want := range map[string]string{
		"::ffff:192.0.2.4":       "give it as 192.0.2.4",
		"::192.0.2.4":            "give it as 192.0.2.4",
		"64:ff9b::192.0.2.4":     "give it as 192.0.2.4",
		"64:ff9b::192.0.2.0/120": "give it as 192.0.2.0/24",
		"2002:c000:200::/40":     "give it as 192.0.2.0/24",
		"2002:c000:204:7::/64":   "give it as 192.0.2.4",
	} {
		_, err := ParsePrefix("ip", in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePrefix(%s) = %v, want %q", in, err, want)
		}
	}
	if _, err := ParseAddr("client_ip", "64:ff9b::203.0.113.7"); err == nil || !strings.Contains(err.Error(), "give it as 203.0.113.7") {
		t.Errorf("ParseAddr of a NAT64 client = %v, want the IPv4 form", err)
	}
}

// TestCheckExpireTime: the zero time is a time like any other, refused as
// past, not read as "never".
func TestCheckExpireTime(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for _, tm := range []time.Time{{}, now, now.Add(-time.Nanosecond), time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)} {
		if _, err := checkExpireTime(tm, now); fieldOf(t, tm.String(), err) != "expire_time" {
			t.Errorf("checkExpireTime(%v): %v", tm, err)
		}
	}
	local := now.Add(time.Hour).In(time.FixedZone("x", 3600))
	if got, err := checkExpireTime(local, now); err != nil || got.Location() != time.UTC || !got.Equal(local) {
		t.Errorf("checkExpireTime(%v) = %v, %v; want it in UTC", local, got, err)
	}
}

// TestIDsAndNames: IDs, tenants and names go through one rule each.
func TestIDsAndNames(t *testing.T) {
	for _, v := range []string{"jose\u0301", "e\u200bve", "\ufeffeve", "a\nb", " eve"} {
		if err := checkID("user_id", v, true); fieldOf(t, v, err) != "user_id" {
			t.Errorf("checkID(%+q): %v", v, err)
		}
		if _, err := tenant(v, false); fieldOf(t, v, err) != "tenant_id" {
			t.Errorf("tenant(%+q): %v", v, err)
		}
	}
	for _, v := range []string{"Bootstrap-admin", "bootstrap\u2010admin", "bootstrap-admin\u200b", "ｂootstrap-admin", "admin key"} {
		if err := checkName("name", v); fieldOf(t, v, err) != "name" {
			t.Errorf("checkName(%+q): %v", v, err)
		}
	}
	for _, v := range []string{BootstrapKeyName, "api-gateway", "svc1", "only-bans-read"} {
		if err := checkName("name", v); err != nil {
			t.Errorf("checkName(%q) = %v", v, err)
		}
	}
}
