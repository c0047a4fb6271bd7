package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// apply performs the action of set's event. A SET with no event applied
// here (a verification, a stream update) is accepted without action (ok
// false); one with several events is refused: SSF 1.0 SETs carry one.
// When the action is one write of the authority's that takes the caller's
// records (a ban), mark writes the SET's in it and marked is true: the ban,
// the SET's mark and its audit record commit together, in one durable
// commit instead of two. Otherwise the caller marks the SET after.
func (r *Receiver) apply(ctx context.Context, t storage.SignalTransmitter, set ssf.SET, mark func(storage.Tx, applied, bool) error) (ev applied, ok, marked bool, err error) {
	if len(set.Events) != 1 {
		return ev, false, false, fmt.Errorf("%w: %d events; a SET carries exactly one", ErrSETInvalid, len(set.Events))
	}
	var payload json.RawMessage
	for ev.uri, payload = range set.Events {
	}
	name, known := eventNames[ev.uri]
	if !known {
		return ev, false, false, nil
	}
	var common struct {
		ReasonAdmin any `json:"reason_admin"`
		Reason      any `json:"reason"` // RISC account-disabled: hijacking, bulk-account
	}
	if err := json.Unmarshal(payload, &common); err != nil {
		return ev, false, false, fmt.Errorf("%w: event %s: %v", ErrSETInvalid, name, err)
	}
	sub := set.EventSubject(ev.uri) // sub_id, or the event's subject (earlier drafts)
	if sub == nil {
		return ev, false, false, fmt.Errorf("%w: no subject (sub_id)", ErrSETInvalid)
	}
	subj, err := subjectOf(*sub)
	if err != nil {
		return ev, false, false, err
	}
	ev.tenant = t.TenantID
	if ev.tenant == storage.AllTenants && subj.tenant != "" && ev.uri == ssf.EventSessionRevoked {
		ev.tenant = subj.tenant
	}
	if subj.user == "" && ev.uri != ssf.EventSessionRevoked {
		return ev, false, false, fmt.Errorf("%w: %s names no user", ErrSETInvalid, name)
	}
	ev.subject = "user:" + subj.user
	if subj.user == "" {
		ev.subject = "session:" + subj.session
	}
	ev.policy = "ssf:" + name
	ev.reason = fmt.Sprintf("Shared Signals %s from %s", name, t.Issuer)
	if why := reasonText(common.Reason); why != "" {
		ev.reason += " (" + why + ")"
	}
	if why := reasonText(common.ReasonAdmin); why != "" {
		ev.reason += ": " + why
	}
	// The transmitter's text goes into bans and revocations, whose reasons
	// the authority bounds and keeps free of control characters: a SET is
	// not refused for the way its reason is written.
	ev.reason = cleanText(ev.reason, maxReasonLen)
	by := actor(t.ID)
	switch ev.uri {
	case ssf.EventAccountDisabled, ssf.EventCredentialCompromise, ssf.EventAccountPurged:
		// A ban of ours in force already (a redelivery after a failure
		// that followed the ban, another replica's) is not made twice.
		own, err := r.ownBans(ctx, t, subj.user)
		if err != nil {
			return ev, false, false, err
		}
		if len(own) > 0 {
			break
		}
		in := authority.BanInput{TenantID: t.TenantID, Kind: storage.SubjectUser, Value: subj.user, Reason: ev.reason, Policy: ev.policy,
			Also: func(tx storage.Tx) error { return mark(tx, ev, true) }}
		if t.BanDuration > 0 {
			end := r.now().Add(t.BanDuration)
			in.ExpireTime = &end
		}
		_, _, err = r.auth.CreateBan(ctx, by, in)
		// The mark committed with the ban, unless the ban's first Update
		// failed (then nothing did) or only its later batches of session
		// revocations did (an IncompleteError: the ban and the mark stand).
		var incomplete *authority.IncompleteError
		marked = err == nil || errors.As(err, &incomplete)
	case ssf.EventAccountEnabled:
		err = r.liftOwnBans(ctx, t, subj.user, ev.reason)
	case ssf.EventSessionRevoked:
		var acted bool
		if acted, err = r.revokeSession(ctx, t, subj, ev.tenant, ev.reason); err == nil && !acted {
			r.log.Info("signal names a session of an issuer not registered here and no user: nothing to revoke",
				"transmitter", t.ID, "jti", set.JTI, "issuer", subj.sessionIssuer)
			return ev, false, false, nil
		}
	}
	if err != nil {
		return ev, false, false, err
	}
	r.log.Info("signal applied", "transmitter", t.ID, "event", name, "jti", set.JTI, "user", subj.user)
	return ev, true, marked, nil
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
// tenant that its signals made (CheckBan: the user's bans through the
// index, not a scan of every ban).
func (r *Receiver) ownBans(ctx context.Context, t storage.SignalTransmitter, user string) ([]storage.Ban, error) {
	tenant := t.TenantID
	if tenant == storage.AllTenants {
		tenant = authority.DefaultTenant // CheckBan names a tenant; the "*" bans match any
	}
	_, bans, err := r.auth.CheckBan(ctx, authority.CheckInput{TenantID: tenant, UserID: user})
	if err != nil {
		return nil, err
	}
	by := actor(t.ID).Name
	return slices.DeleteFunc(bans, func(b storage.Ban) bool {
		return b.TenantID != t.TenantID || b.Kind != storage.SubjectUser || b.Value != user || b.CreatedBy != by || !b.Full()
	}), nil
}

// liftOwnBans lifts the active bans of user that this transmitter's
// signals made; an operator's ban on the same user stays.
func (r *Receiver) liftOwnBans(ctx context.Context, t storage.SignalTransmitter, user, reason string) error {
	own, err := r.ownBans(ctx, t, user)
	if err != nil {
		return err
	}
	for _, b := range own {
		if _, _, err := r.auth.LiftBan(ctx, actor(t.ID), b.ID, reason); err != nil && !errors.Is(err, authority.ErrBanAlreadyLifted) {
			return err
		}
	}
	return nil
}

// revokeSession applies a CAEP session-revoked: the external issuer's
// session when the subject names one of an issuer registered here, else
// every session of the user in the tenant (a session this authority
// cannot name is revoked with all the user's others). acted is false when
// the subject names neither a session here nor a user: nothing to revoke.
func (r *Receiver) revokeSession(ctx context.Context, t storage.SignalTransmitter, s subject, tenant, reason string) (acted bool, err error) {
	by := actor(t.ID)
	if s.session != "" && s.sessionIssuer != "" {
		_, err := r.auth.GetIssuer(ctx, s.sessionIssuer)
		switch {
		case err == nil:
			_, _, err = r.auth.RevokeExternal(ctx, by, s.sessionIssuer, s.session, "", reason)
			return err == nil, err
		case !errors.Is(err, authority.ErrNotFound):
			return false, err
		}
	}
	if s.user == "" {
		return false, nil
	}
	if tenant == storage.AllTenants {
		return false, fmt.Errorf("%w: the transmitter's tenant is \"*\" and the subject names no tenant whose sessions to revoke", ErrSETInvalid)
	}
	_, _, err = r.auth.RevokeUserSessions(ctx, by, tenant, s.user, reason)
	return err == nil, err
}
