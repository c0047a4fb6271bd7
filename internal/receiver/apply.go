package receiver

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/portcullis-dev/portcullis/ident"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/ssf"
)

// applied is what a SET did, for its audit record.
type applied struct {
	uri, tenant, subject, reason, policy string
}

// eventNames are the short names of the applied events, for reasons and
// policies.
var eventNames = map[string]string{
	ssf.EventSessionRevoked:       "session-revoked",
	ssf.EventAccountDisabled:      "account-disabled",
	ssf.EventAccountEnabled:       "account-enabled",
	ssf.EventCredentialCompromise: "credential-compromise",
	ssf.EventAccountPurged:        "account-purged",
}

// kind is what a SET asks the receiver to do.
type kind int

const (
	kindNone   kind = iota // an event not applied here (a verification, a stream update): accepted
	kindBan                // account-disabled, credential-compromise, account-purged
	kindLift               // account-enabled: lift this transmitter's own bans
	kindRevoke             // session-revoked
)

// action is what a SET asks of the receiver, read from it before any
// write.
type action struct {
	kind kind
	name string // the event's short name
	subj subject
	ev   applied
}

// plan reads the action of set's event. A SET with several events is
// refused: SSF 1.0 SETs carry one.
func (r *Receiver) plan(t storage.SignalTransmitter, set ssf.SET) (action, error) {
	var a action
	if len(set.Events) != 1 {
		return a, fmt.Errorf("%w: %d events; a SET carries exactly one", ErrSETInvalid, len(set.Events))
	}
	var payload json.RawMessage
	for a.ev.uri, payload = range set.Events {
	}
	name, known := eventNames[a.ev.uri]
	if !known {
		return a, nil
	}
	a.name = name
	var common struct {
		ReasonAdmin any `json:"reason_admin"`
		Reason      any `json:"reason"` // RISC account-disabled: hijacking, bulk-account
	}
	if err := json.Unmarshal(payload, &common); err != nil {
		return a, fmt.Errorf("%w: event %s: %v", ErrSETInvalid, name, err)
	}
	sub := set.EventSubject(a.ev.uri) // sub_id, or the event's subject (earlier drafts)
	if sub == nil {
		return a, fmt.Errorf("%w: no subject (sub_id)", ErrSETInvalid)
	}
	subj, err := subjectOf(*sub)
	if err != nil {
		return a, err
	}
	a.subj = subj
	a.ev.tenant = t.TenantID
	if a.ev.tenant == storage.AllTenants && subj.tenant != "" && a.ev.uri == ssf.EventSessionRevoked {
		a.ev.tenant = subj.tenant
	}
	if subj.user == "" && a.ev.uri != ssf.EventSessionRevoked {
		return a, fmt.Errorf("%w: %s names no user", ErrSETInvalid, name)
	}
	a.ev.subject = "user:" + subj.user
	if subj.user == "" {
		a.ev.subject = "session:" + subj.session
	}
	a.ev.policy = "ssf:" + name
	a.ev.reason = fmt.Sprintf("Shared Signals %s from %s", name, t.Issuer)
	if why := reasonText(common.Reason); why != "" {
		a.ev.reason += " (" + why + ")"
	}
	if why := reasonText(common.ReasonAdmin); why != "" {
		a.ev.reason += ": " + why
	}
	// The transmitter's text goes into bans and revocations, whose reasons
	// the authority bounds and keeps free of control characters: a SET is
	// not refused for the way its reason is written.
	a.ev.reason = cleanText(a.ev.reason, maxReasonLen)
	switch a.ev.uri {
	case ssf.EventAccountDisabled, ssf.EventCredentialCompromise, ssf.EventAccountPurged:
		a.kind = kindBan
	case ssf.EventAccountEnabled:
		a.kind = kindLift
	case ssf.EventSessionRevoked:
		a.kind = kindRevoke
	}
	return a, nil
}

// act performs a in w's transaction; acted is false when there was
// nothing to do (an event not applied here, a session of an issuer not
// registered here and no user).
func (r *Receiver) act(w *authority.Writer, t storage.SignalTransmitter, a action) (acted bool, err error) {
	by := actor(t.ID)
	switch a.kind {
	case kindBan:
		// A ban of ours in force already (a redelivery after a failure
		// that followed the ban, another replica's) is not made twice.
		own, err := r.ownBans(w, t, a.subj.user)
		if err != nil || len(own) > 0 {
			return err == nil, err
		}
		_, _, err = w.CreateBan(by, r.banInput(t, a, w.Now()))
		return err == nil, err
	case kindLift:
		own, err := r.ownBans(w, t, a.subj.user)
		if err != nil {
			return false, err
		}
		for _, b := range own {
			if _, err := w.LiftBan(by, b.ID, a.ev.reason); err != nil {
				return false, err
			}
		}
		return true, nil
	case kindRevoke:
		if s := a.subj; s.session != "" && s.sessionIssuer != "" {
			_, err := w.Issuer(s.sessionIssuer)
			switch {
			case err == nil:
				_, err = w.RevokeExternal(by, s.sessionIssuer, s.session, "", a.ev.reason)
				return err == nil, err
			case !errors.Is(err, authority.ErrNotFound):
				return false, err
			}
		}
		if a.subj.user == "" {
			return false, nil
		}
		if err := r.checkRevokeTenant(a); err != nil {
			return false, err
		}
		_, err := w.RevokeUserSessions(by, a.ev.tenant, a.subj.user, a.ev.reason)
		return err == nil, err
	}
	return false, nil
}

// banInput is the ban a banning SET makes.
func (r *Receiver) banInput(t storage.SignalTransmitter, a action, now time.Time) authority.BanInput {
	in := authority.BanInput{TenantID: t.TenantID, Kind: storage.SubjectUser, Value: a.subj.user, Reason: a.ev.reason, Policy: a.ev.policy}
	if t.BanDuration > 0 {
		end := now.Add(t.BanDuration)
		in.ExpireTime = &end
	}
	return in
}

// checkRevokeTenant refuses a revocation of every session of a user when
// there is no one tenant to revoke them in.
func (r *Receiver) checkRevokeTenant(a action) error {
	if a.ev.tenant == storage.AllTenants {
		return fmt.Errorf("%w: the transmitter's tenant is \"*\" and the subject names no tenant whose sessions to revoke", ErrSETInvalid)
	}
	return nil
}

// subject is what the receiver reads of a SET's subject: a user (and the
// issuer whose namespace its ID is in), a session (and its issuer), a
// tenant.
type subject struct {
	user, issuer           string
	session, sessionIssuer string
	tenant                 string
}

// subjectOf maps an RFC 9493 subject onto a user: an iss_sub's sub, an
// email address or an opaque id, alone or as a complex subject's user. A
// complex subject may add a session (opaque, or iss_sub: the session ID in
// its issuer's namespace, as internal/transmitter sends an external
// issuer's session) and a tenant; it may name a session without a user.
func subjectOf(s ssf.Subject) (subject, error) {
	var out subject
	user := &s
	if s.Format == ssf.FormatComplex || (s.Format == "" && (s.User != nil || s.Session != nil)) {
		user = s.User
		if ss := s.Session; ss != nil {
			if ss.Format == ssf.FormatIssSub {
				out.session, out.sessionIssuer = ss.Sub, ss.Iss
			} else {
				out.session = cmpStr(ss.ID, ss.Sub)
			}
		}
		if s.Tenant != nil {
			out.tenant = cmpStr(s.Tenant.ID, s.Tenant.Sub)
		}
		if user == nil {
			if out.session == "" {
				return out, fmt.Errorf("%w: a complex subject with neither user nor session", ErrSETInvalid)
			}
			return out, nil
		}
	}
	switch user.Format {
	case ssf.FormatIssSub:
		out.user, out.issuer = user.Sub, user.Iss
	case ssf.FormatEmail:
		out.user = user.Email
	case ssf.FormatOpaque:
		out.user = user.ID
	default:
		return out, fmt.Errorf("%w: subject format %.32q names no user this receiver knows (iss_sub, email, opaque, or complex with one)", ErrSETInvalid, user.Format)
	}
	if out.user == "" {
		return out, fmt.Errorf("%w: the subject names an empty user", ErrSETInvalid)
	}
	if out.session != "" && out.sessionIssuer == "" {
		out.sessionIssuer = out.issuer // an opaque session of the user's issuer
	}
	return out, nil
}

func cmpStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// maxReasonLen is the authority's bound on a reason (validate.go).
const maxReasonLen = 1024

// cleanText replaces what free text may not hold (invalid UTF-8, control
// characters, bidi controls: ident.CheckText) with U+FFFD and cuts s to
// at most max bytes, on a character boundary.
func cleanText(s string, max int) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if r < 0x20 || r == 0x7f || (0x80 <= r && r <= 0x9f) || ident.IsBidiControl(r) {
			r = utf8.RuneError
		}
		if b.Len()+utf8.RuneLen(r) > max {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// reasonText reads a CAEP reason_admin: a string, or a map of language
// tags to strings (the "en" one, else any).
func reasonText(v any) string {
	switch x := v.(type) {
	case string:
		return truncate(x)
	case map[string]any:
		if s, ok := x["en"].(string); ok {
			return truncate(s)
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if s, ok := x[k].(string); ok {
				return truncate(s)
			}
		}
	}
	return ""
}

// ownBans returns the active full bans of user in the transmitter's
// tenant that its signals made (through the bans' index, not a scan of
// every ban).
func (r *Receiver) ownBans(w *authority.Writer, t storage.SignalTransmitter, user string) ([]storage.Ban, error) {
	bans, err := w.ActiveBans(lookupTenant(t), user)
	if err != nil {
		return nil, err
	}
	return own(bans, t, user), nil
}

// lookupTenant is the tenant to look the transmitter's bans up in: its
// own, or for "*" any one (a lookup names a tenant; "*" bans match all).
func lookupTenant(t storage.SignalTransmitter) string {
	if t.TenantID == storage.AllTenants {
		return authority.DefaultTenant
	}
	return t.TenantID
}

// own keeps the full bans of user in the transmitter's tenant that its
// signals made.
func own(bans []storage.Ban, t storage.SignalTransmitter, user string) []storage.Ban {
	by := actor(t.ID).Name
	return slices.DeleteFunc(bans, func(b storage.Ban) bool {
		return b.TenantID != t.TenantID || b.Kind != storage.SubjectUser || b.Value != user || b.CreatedBy != by || !b.Full()
	})
}
