package storage

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// BanDecoder decodes stored bans (the JSON that encoding/json makes of a
// Ban, which both backends store) several times faster than
// encoding/json, whose reflection, validation pass and allocations were
// most of the cost of reading a million bans for a snapshot. It handles
// exactly what json.Marshal writes for a Ban: the known keys, strings
// without escapes, times in UTC, no spacing. For anything else Decode
// reports false and the caller decodes with encoding/json, so the result
// is always encoding/json's (FuzzBanDecoder checks it).
//
// It reuses the previous ban's strings when equal (tenant, reason,
// creator: most bans of a store share them), so a run of bans allocates
// little beyond their IDs and subjects. Its zero value is ready; it is
// not safe for concurrent use.
type BanDecoder struct {
	last [banStrings]string
}

// Indexes of BanDecoder.last: the fields whose values bans repeat.
const (
	lastTenant = iota
	lastReason
	lastPolicy
	lastCreatedBy
	lastCreatorAddr
	lastLiftedBy
	lastLiftReason
	banStrings
)

// Unmarshal is json.Unmarshal of a stored record into v, through Decode
// when v is a *Ban that Decode can read; d may be nil (encoding/json only).
func (d *BanDecoder) Unmarshal(data []byte, v any) error {
	if b, ok := v.(*Ban); ok && d != nil && d.Decode(data, b) {
		return nil
	}
	return json.Unmarshal(data, v)
}

// Decode decodes data into *b and reports whether it could; on false, *b
// is unspecified.
func (d *BanDecoder) Decode(data []byte, b *Ban) bool {
	*b = Ban{}
	p := banParser{data: data}
	if !p.byte('{') {
		return false
	}
	if p.byte('}') {
		return p.end()
	}
	for {
		key, ok := p.rawString()
		if !ok || !p.byte(':') {
			return false
		}
		if !d.field(&p, key, b) {
			return false
		}
		if p.byte('}') {
			return p.end()
		}
		if !p.byte(',') {
			return false
		}
	}
}

// field decodes the value of key into b.
func (d *BanDecoder) field(p *banParser, key []byte, b *Ban) bool {
	if p.null() { // encoding/json leaves the field as it is, but for a slice
		if string(key) == "Capabilities" {
			b.Capabilities = nil
		}
		return true
	}
	switch string(key) {
	case "ID":
		return p.str(&b.ID, nil)
	case "TenantID":
		return p.str(&b.TenantID, &d.last[lastTenant])
	case "Kind":
		raw, ok := p.rawString()
		if !ok {
			return false
		}
		switch string(raw) { // the constants: no copy per ban
		case string(SubjectUser):
			b.Kind = SubjectUser
		case string(SubjectIP):
			b.Kind = SubjectIP
		case string(SubjectDevice):
			b.Kind = SubjectDevice
		default:
			b.Kind = SubjectKind(raw)
		}
		return true
	case "Value":
		return p.str(&b.Value, nil)
	case "Capabilities":
		return p.strings(&b.Capabilities)
	case "Reason":
		return p.str(&b.Reason, &d.last[lastReason])
	case "Policy":
		return p.str(&b.Policy, &d.last[lastPolicy])
	case "CreatedBy":
		return p.str(&b.CreatedBy, &d.last[lastCreatedBy])
	case "CreatorAddr":
		return p.str(&b.CreatorAddr, &d.last[lastCreatorAddr])
	case "CreateTime":
		return p.time(&b.CreateTime)
	case "ExpireTime":
		return p.time(&b.ExpireTime)
	case "LiftTime":
		return p.time(&b.LiftTime)
	case "LiftedBy":
		return p.str(&b.LiftedBy, &d.last[lastLiftedBy])
	case "LiftReason":
		return p.str(&b.LiftReason, &d.last[lastLiftReason])
	case "ExpiryAnnounced":
		return p.time(&b.ExpiryAnnounced)
	}
	return false // another key: encoding/json's matching (case-insensitive) decides
}

// banParser reads data from i on.
type banParser struct {
	data []byte
	i    int
}

func (p *banParser) byte(c byte) bool {
	if p.i < len(p.data) && p.data[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *banParser) end() bool { return p.i == len(p.data) }

func (p *banParser) null() bool {
	if len(p.data)-p.i >= 4 && string(p.data[p.i:p.i+4]) == "null" {
		p.i += 4
		return true
	}
	return false
}

// rawString reads a string without escapes or control characters, in
// valid UTF-8 (encoding/json would replace invalid bytes), and returns
// its bytes.
func (p *banParser) rawString() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	start := p.i
	ascii := true
	for ; p.i < len(p.data); p.i++ {
		switch c := p.data[p.i]; {
		case c == '"':
			s := p.data[start:p.i]
			p.i++
			return s, ascii || utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// str reads a string into *dst; with last, the previous value read there
// is reused when equal (and last remembers this one).
func (p *banParser) str(dst *string, last *string) bool {
	s, ok := p.rawString()
	if !ok {
		return false
	}
	switch {
	case len(s) == 0:
		*dst = ""
	case last != nil && string(s) == *last:
		*dst = *last
	default:
		*dst = string(s)
		if last != nil {
			*last = *dst
		}
	}
	return true
}

// strings reads an array of strings: [] is an empty slice, as
// encoding/json makes it.
func (p *banParser) strings(dst *[]string) bool {
	if !p.byte('[') {
		return false
	}
	out := []string{}
	if p.byte(']') {
		*dst = out
		return true
	}
	for {
		var s string
		if !p.str(&s, nil) {
			return false
		}
		out = append(out, s)
		if p.byte(']') {
			*dst = out
			return true
		}
		if !p.byte(',') {
			return false
		}
	}
}

// time reads a time as Time.MarshalJSON writes one in UTC:
// "YYYY-MM-DDTHH:MM:SS[.fraction]Z", each field in range.
func (p *banParser) time(dst *time.Time) bool {
	s, ok := p.rawString()
	if !ok || len(s) < len("2006-01-02T15:04:05Z") || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
		s[13] != ':' || s[16] != ':' || s[len(s)-1] != 'Z' {
		return false
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	sec, ok6 := digits(s[17:19])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 ||
		month < 1 || month > 12 || day < 1 || day > daysIn(time.Month(month), year) || hour > 23 || minute > 59 || sec > 59 {
		return false
	}
	nsec := 0
	if frac := s[19 : len(s)-1]; len(frac) > 0 {
		// A dot and 1 to 9 digits (MarshalJSON drops trailing zeros).
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return false
		}
		n, ok := digits(frac[1:])
		if !ok {
			return false
		}
		for range 10 - len(frac) {
			n *= 10
		}
		nsec = n
	}
	*dst = time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	return true
}

// digits is the value of s, all decimal digits.
func digits(s []byte) (int, bool) {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(s) > 0
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
