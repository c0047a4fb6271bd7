package authority

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// maxBanDuration bounds temporary bans (100 years) so that expiry times
// never overflow; use a permanent ban beyond that.
const maxBanDuration = 100 * 365 * 24 * time.Hour

// ParseDuration parses Go duration syntax plus a "d" unit of 24 hours, as
// operators type it: "90m", "1.5h", "7d", "1d12h", "0.5d". Only positive
// durations up to 100 years are accepted.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if strings.HasPrefix(s, "-") {
		return 0, errors.New("duration must be positive")
	}
	var total time.Duration
	rest := strings.TrimPrefix(s, "+")
	for rest != "" {
		// One number with its unit.
		i := 0
		for i < len(rest) && (rest[i] == '.' || (rest[i] >= '0' && rest[i] <= '9')) {
			i++
		}
		j := i
		for j < len(rest) && !(rest[j] == '.' || (rest[j] >= '0' && rest[j] <= '9')) {
			j++
		}
		num, unit := rest[:i], rest[i:j]
		rest = rest[j:]
		if num == "" || unit == "" {
			return 0, errors.New(`want a number and a unit, as in "90m", "1.5h" or "7d"`)
		}
		var d time.Duration
		if unit == "d" {
			days, err := strconv.ParseFloat(num, 64)
			if err != nil || days > float64(maxBanDuration/(24*time.Hour)) {
				return 0, errors.New("bad number of days " + strconv.Quote(num))
			}
			d = time.Duration(days * float64(24*time.Hour))
		} else {
			var err error
			if d, err = time.ParseDuration(num + unit); err != nil {
				return 0, errors.New(`unknown unit or bad number in ` + strconv.Quote(num+unit) + ` (units: ns, us, ms, s, m, h, d)`)
			}
		}
		total += d
		if total > maxBanDuration || total < 0 {
			return 0, errors.New("duration longer than 100 years; use a permanent ban")
		}
	}
	if total <= 0 {
		return 0, errors.New("duration must be positive")
	}
	return total, nil
}

// checkExpireTime checks a given expire_time (of a ban or an API key) and
// returns it in UTC. It must be in the future. The zero time is refused
// like any other past time, although storage.Ban and storage.APIKey use it
// for "never": a caller that sets a timestamp to year 1 (by mistake, or a
// client that zero-fills) must not get a permanent ban or a key that never
// expires without a word; "never" is the field left unset.
func checkExpireTime(t, now time.Time) (time.Time, error) {
	if !t.After(now) {
		return time.Time{}, invalid("expire_time", "%s is not in the future; leave expire_time unset for never", t.UTC().Format(time.RFC3339Nano))
	}
	return t.UTC(), nil
}
