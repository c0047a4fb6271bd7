package ssf

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"
)

// Subject identifier formats (RFC 9493 §3.2) and SSF's complex subject.
const (
	FormatAccount     = "account"
	FormatEmail       = "email"
	FormatIssSub      = "iss_sub"
	FormatOpaque      = "opaque"
	FormatPhoneNumber = "phone_number"
	FormatDID         = "did"
	FormatURI         = "uri"
	FormatComplex     = "complex"
)

// Subject is a subject identifier (RFC 9493) or an SSF 1.0 complex subject
// (§3.2: members user, session, tenant, device..., each a simple subject).
type Subject struct {
	Format      string `json:"format,omitempty"`
	ID          string `json:"id,omitempty"`           // opaque
	Iss         string `json:"iss,omitempty"`          // iss_sub
	Sub         string `json:"sub,omitempty"`          // iss_sub
	Email       string `json:"email,omitempty"`        // email
	PhoneNumber string `json:"phone_number,omitempty"` // phone_number (E.164)
	URI         string `json:"uri,omitempty"`          // account ("acct:"), uri
	URL         string `json:"url,omitempty"`          // did

	User        *Subject `json:"user,omitempty"`
	Session     *Subject `json:"session,omitempty"`
	Tenant      *Subject `json:"tenant,omitempty"`
	Device      *Subject `json:"device,omitempty"`
	Application *Subject `json:"application,omitempty"`
	OrgUnit     *Subject `json:"org_unit,omitempty"`
	Group       *Subject `json:"group,omitempty"`
}

// maxSubjectMember bounds every string member: a subject is an identifier,
// and receivers store it.
const maxSubjectMember = 1024

// Validate checks s against its format: exactly the members the format
// requires, non-empty, and no member of another format. A complex subject
// (format "complex", or no format with at least one complex member, as
// SSF 1.0 examples write it) needs at least one member, each a valid simple
// subject.
func (s Subject) Validate() error {
	return s.validate(true)
}

func (s Subject) members() map[string]*Subject {
	return map[string]*Subject{"user": s.User, "session": s.Session, "tenant": s.Tenant, "device": s.Device,
		"application": s.Application, "org_unit": s.OrgUnit, "group": s.Group}
}

func (s Subject) hasComplex() bool {
	for _, m := range s.members() {
		if m != nil {
			return true
		}
	}
	return false
}

func (s Subject) validate(top bool) error {
	if s.Format == FormatComplex || (s.Format == "" && s.hasComplex()) {
		if !top {
			return errors.New("ssf: a complex subject cannot nest a complex subject")
		}
		if s.ID != "" || s.Iss != "" || s.Sub != "" || s.Email != "" || s.PhoneNumber != "" || s.URI != "" || s.URL != "" {
			return errors.New("ssf: a complex subject has only subject members (user, session, tenant...)")
		}
		if !s.hasComplex() {
			return errors.New("ssf: a complex subject needs at least one member")
		}
		for name, m := range s.members() {
			if m == nil {
				continue
			}
			if err := m.validate(false); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		return nil
	}
	if s.hasComplex() {
		return fmt.Errorf("ssf: a subject of format %q has no subject members", s.Format)
	}
	var want map[string]string
	switch s.Format {
	case FormatOpaque:
		want = map[string]string{"id": s.ID}
	case FormatIssSub:
		want = map[string]string{"iss": s.Iss, "sub": s.Sub}
	case FormatEmail:
		want = map[string]string{"email": s.Email}
		if a, err := mail.ParseAddress(s.Email); s.Email != "" && (err != nil || a.Address != s.Email || a.Name != "") {
			return fmt.Errorf("ssf: email %.200q is not an addr-spec", s.Email)
		}
	case FormatPhoneNumber:
		want = map[string]string{"phone_number": s.PhoneNumber}
		if p := s.PhoneNumber; p != "" && (!strings.HasPrefix(p, "+") || len(p) < 3 || len(p) > 16 || strings.Trim(p[1:], "0123456789") != "") {
			return fmt.Errorf("ssf: phone_number %.200q is not E.164", p)
		}
	case FormatAccount:
		want = map[string]string{"uri": s.URI}
		if s.URI != "" && !strings.HasPrefix(s.URI, "acct:") {
			return fmt.Errorf("ssf: account uri %.200q is not an acct: URI", s.URI)
		}
	case FormatURI:
		want = map[string]string{"uri": s.URI}
		if i := strings.IndexByte(s.URI, ':'); s.URI != "" && i < 1 {
			return fmt.Errorf("ssf: uri %.200q is not an absolute URI", s.URI)
		}
	case FormatDID:
		want = map[string]string{"url": s.URL}
		if s.URL != "" && !strings.HasPrefix(s.URL, "did:") {
			return fmt.Errorf("ssf: did url %.200q is not a DID URL", s.URL)
		}
	case "":
		return errors.New("ssf: subject has no format")
	default:
		return fmt.Errorf("ssf: unsupported subject format %.100q", s.Format)
	}
	have := map[string]string{"id": s.ID, "iss": s.Iss, "sub": s.Sub, "email": s.Email,
		"phone_number": s.PhoneNumber, "uri": s.URI, "url": s.URL}
	for name, v := range have {
		_, needed := want[name]
		switch {
		case needed && v == "":
			return fmt.Errorf("ssf: a subject of format %q needs %q", s.Format, name)
		case !needed && v != "":
			return fmt.Errorf("ssf: a subject of format %q has no %q", s.Format, name)
		case len(v) > maxSubjectMember:
			return fmt.Errorf("ssf: subject member %q longer than %d bytes", name, maxSubjectMember)
		}
	}
	return nil
}

// Key is s's canonical JSON: object members sorted by name, empty members
// omitted, and a complex subject written with format "complex" whether or
// not it was received with one. Two subjects that mean the same identify
// the same way, so Key serves to store and compare subjects.
func (s Subject) Key() string {
	b, err := json.Marshal(s.canonical())
	if err != nil {
		// A map of strings and maps of strings always marshals.
		return ""
	}
	return string(b)
}

func (s Subject) canonical() map[string]any {
	out := map[string]any{}
	for name, v := range map[string]string{"format": s.Format, "id": s.ID, "iss": s.Iss, "sub": s.Sub, "email": s.Email,
		"phone_number": s.PhoneNumber, "uri": s.URI, "url": s.URL} {
		if v != "" {
			out[name] = v
		}
	}
	for name, m := range s.members() {
		if m != nil {
			out[name] = m.canonical()
			out["format"] = FormatComplex
		}
	}
	return out
}

// Opaque returns an opaque subject.
func Opaque(id string) *Subject { return &Subject{Format: FormatOpaque, ID: id} }

// IssSub returns an iss_sub subject.
func IssSub(iss, sub string) *Subject { return &Subject{Format: FormatIssSub, Iss: iss, Sub: sub} }
