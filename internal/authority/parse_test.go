package authority

import (
	"errors"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	ok := map[string]time.Duration{
		"90m": 90 * time.Minute, "1.5h": 90 * time.Minute, "7d": 7 * 24 * time.Hour,
		"1d12h": 36 * time.Hour, "0.5d": 12 * time.Hour, "2s": 2 * time.Second, "720h": 720 * time.Hour,
		"1h30m": 90 * time.Minute, "36500d": 36500 * 24 * time.Hour,
	}
	for in, want := range ok {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-5m", "0s", "0d", "abc", "5x", "d", "7", "1.2.3h", "40000d", "99999999999h", "5m-", " 5m"} {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	ok := map[string]string{
		"203.0.113.7": "203.0.113.7/32", "203.0.113.0/24": "203.0.113.0/24",
		"2001:db8::1": "2001:db8::1/128", "2001:db8::/32": "2001:db8::/32",
	}
	for in, want := range ok {
		p, err := ParsePrefix("ip", in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, in := range []string{"", "10.0.0.0/33", "10.1.2.3/8", "0.0.0.0/0", "::/0", "::ffff:1.2.3.4", "::ffff:1.2.3.0/120",
		"fe80::1%eth0", "300.1.1.1", "example.com", "10.0.0.0/-1"} {
		_, err := ParsePrefix("ip", in)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "ip" || !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParsePrefix(%q) = %v, want a FieldError on ip", in, err)
		}
	}
}
