package authority

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// BanInput describes a ban to create.
type BanInput struct {
	TenantID string
	// Kind and Value are the subject; Value is the user ID, device ID, or
	// IP address or CIDR prefix.
	Kind     storage.SubjectKind
	Value    string
	Duration string // Go syntax plus "d"; "" = permanent unless ExpireTime
	// ExpireTime is when the ban ends; nil = not given. A given time must
	// be in the future, whatever it is: the zero time (year 1, what an
	// unset timestamp decodes to) is not "never".
	ExpireTime   *time.Time
	Capabilities []string
	Reason       string
	Policy       string
	// Also, when set, writes the caller's own records in the Update that
	// commits the ban (the Shared Signals receiver's mark of the SET and
	// its audit record), so that they commit with it or not at all. An
	// error from it writes nothing and is returned unchanged.
	Also func(storage.Tx) error
}

func (in BanInput) validate(now time.Time) (storage.Ban, error) {
	var b storage.Ban
	var err error
	if b.TenantID, err = tenant(in.TenantID, true); err != nil {
		return b, err
	}
	b.Kind = in.Kind
	switch in.Kind {
	case storage.SubjectUser:
		err = checkID("subject.user_id", in.Value, true)
		b.Value = in.Value
	case storage.SubjectDevice:
		err = checkID("subject.device_id", in.Value, true)
		b.Value = in.Value
	case storage.SubjectIP:
		p, perr := ParsePrefix("subject.ip", in.Value)
		err, b.Value = perr, p.String()
	default:
		err = invalid("subject", "set exactly one of user_id, ip, device_id")
	}
	if err != nil {
		return b, err
	}
	switch {
	case in.Duration != "" && in.ExpireTime != nil:
		return b, invalid("duration", "give either duration or expire_time, not both")
	case in.Duration != "":
		d, err := ParseDuration(in.Duration)
		if err != nil {
			return b, invalid("duration", "%v", err)
		}
		b.ExpireTime = now.Add(d)
	case in.ExpireTime != nil:
		exp, err := checkExpireTime(*in.ExpireTime, now)
		if err != nil {
			return b, err
		}
		if exp.Sub(now) > maxBanDuration {
			return b, invalid("expire_time", "is more than 100 years away; use a permanent ban")
		}
		b.ExpireTime = exp
	}
	if err := checkCapabilities("capabilities", in.Capabilities); err != nil {
		return b, err
	}
	b.Capabilities = slices.Compact(slices.Sorted(slices.Values(in.Capabilities)))
	if err := checkText("reason", in.Reason); err != nil {
		return b, err
	}
	if err := checkText("policy", in.Policy); err != nil {
		return b, err
	}
	b.Reason, b.Policy = in.Reason, in.Policy
	return b, nil
}

// sessionsUnder returns, in ID order, the live sessions that full ban b
// revokes whose ID is greater than after: at most limit, or all when
// limit < 0.
func (a *Authority) sessionsUnder(tx storage.ReadTx, b storage.Ban, now time.Time, after string, limit int) ([]storage.Session, error) {
	q := storage.SessionQuery{After: after}
	if b.TenantID != storage.AllTenants {
		q.TenantID = b.TenantID
		switch b.Kind {
		case storage.SubjectUser:
			q.UserID = b.Value
		case storage.SubjectDevice:
			q.DeviceID = b.Value
		}
	}
	match := func() func(storage.Session) bool {
		switch b.Kind {
		case storage.SubjectUser:
			return func(s storage.Session) bool { return s.UserID == b.Value }
		case storage.SubjectDevice:
			return func(s storage.Session) bool { return s.DeviceID == b.Value }
		default:
			p, err := ParsePrefix("ip", b.Value)
			return func(s storage.Session) bool { return err == nil && s.ClientIP.IsValid() && p.Contains(s.ClientIP) }
		}
	}()
	return liveSessions(tx, q, match, now, limit)
}

// revoke marks s revoked and emits its event. The caller writes the audit
// record.
func revoke(tx storage.Tx, s storage.Session, now time.Time, by, reason string) error {
	s.RevokeTime, s.RevokedBy, s.RevokeReason = now, by, reason
	if err := tx.PutSession(s); err != nil {
		return err
	}
	return tx.Emit(storage.Event{Kind: storage.EventSessionRevoked, Time: now, Session: &s})
}

// BanWrite is what CreateBan committed besides the ban.
type BanWrite struct {
	// RevokedSessions counts the live sessions a full ban revoked.
	RevokedSessions int
	// Revision is the store revision of the write (of the last one when the
	// revocations were split): a mirror at this revision or later enforces
	// the ban and has applied every revocation.
	Revision int64
}

// CreateBan records a ban. A full ban also revokes every matching live
// session; it returns how many, and the revision of the write.
//
// The ban, its event and its audit record always commit together, in the
// first Update. The revocations join them when the store takes everything
// in one transaction (always on bolt). When it does not (etcd's
// --max-txn-ops), the first Update carries as many as fit and later
// Updates revoke the rest in batches, each with its own change and its
// "session.revoke_ban" audit record (see revokeAll). A failure after the
// ban committed is an *IncompleteError naming the ban; one before leaves
// nothing behind.
func (a *Authority) CreateBan(ctx context.Context, actor Actor, in BanInput) (storage.Ban, BanWrite, error) {
	now := a.now()
	ban, rv, err := a.newBan(actor, in, now)
	if err != nil {
		return storage.Ban{}, BanWrite{}, err
	}
	revoked, rev, committed, err := a.revokeAll(ctx, rv, now)
	switch {
	case err != nil && committed:
		a.log.Error("ban created, but revoking its sessions failed", "ban_id", ban.ID, "tenant_id", ban.TenantID,
			"revoked_sessions", revoked, "actor", actor.Name, "error", err)
		return ban, BanWrite{RevokedSessions: revoked, Revision: rev},
			&IncompleteError{BanID: ban.ID, Revoked: revoked, Revision: rev, Err: err}
	case err != nil:
		return storage.Ban{}, BanWrite{}, err
	}
	a.log.Info("ban created", "ban_id", ban.ID, "tenant_id", ban.TenantID, "subject_kind", ban.Kind,
		"full", ban.Full(), "revoked_sessions", revoked, "actor", actor.Name)
	return ban, BanWrite{RevokedSessions: revoked, Revision: rev}, nil
}

// newBan validates in and returns the ban it makes, with the revocation
// that commits it: the ban, in.Also, its event and its audit record in
// the first Update, with the live sessions a full ban revokes.
func (a *Authority) newBan(actor Actor, in BanInput, now time.Time) (storage.Ban, revocation, error) {
	ban, err := in.validate(now)
	if err != nil {
		return storage.Ban{}, revocation{}, err
	}
	ban.ID = newID("ban_", now)
	ban.CreateTime, ban.CreatedBy, ban.CreatorAddr = now, actor.Name, actor.Addr
	subject := subjectString(ban.Kind, ban.Value)
	return ban, revocation{
		pick: func(tx storage.ReadTx, after string, limit int) ([]storage.Session, error) {
			if !ban.Full() {
				return nil, nil
			}
			return a.sessionsUnder(tx, ban, now, after, limit)
		},
		by: actor.Name, reason: "ban " + ban.ID,
		head: func(tx storage.Tx) error {
			if err := tx.PutBan(ban); err != nil {
				return err
			}
			if in.Also != nil {
				if err := in.Also(tx); err != nil {
					return err
				}
			}
			return tx.Emit(storage.Event{Kind: storage.EventBanCreated, Time: now, Ban: &ban})
		},
		audit: func(tx storage.Tx, n int, first bool) error {
			rec := storage.AuditRecord{
				ID: newID("aud_", now), Time: now, Action: "ban.create", Actor: actor.Name, ActorAddr: actor.Addr, Channel: actor.Channel,
				TenantID: ban.TenantID, Subject: subject, TargetID: ban.ID,
				Reason: ban.Reason, Policy: ban.Policy, Details: map[string]string{"revoked_sessions": strconv.Itoa(n)},
			}
			if !first {
				// A later batch of the ban's revocations: the sum of
				// revoked_sessions over the ban's records is the total.
				rec.Action = "session.revoke_ban"
				return tx.AppendAudit(rec)
			}
			if !ban.ExpireTime.IsZero() {
				rec.Details["expire_time"] = ban.ExpireTime.Format(time.RFC3339)
			}
			if !ban.Full() {
				rec.Details["capabilities"] = fmt.Sprint(ban.Capabilities)
			}
			return tx.AppendAudit(rec)
		},
	}, nil
}

// LiftBan ends a ban early, keeping its record. It returns the lifted ban
// and the revision of the write.
func (a *Authority) LiftBan(ctx context.Context, actor Actor, banID, reason string) (storage.Ban, int64, error) {
	var ban storage.Ban
	rev, err := a.Write(ctx, func(w *Writer) (err error) {
		ban, err = w.LiftBan(actor, banID, reason)
		return err
	})
	if err != nil {
		return storage.Ban{}, 0, err
	}
	a.log.Info("ban lifted", "ban_id", ban.ID, "tenant_id", ban.TenantID, "actor", actor.Name)
	return ban, rev, nil
}

// LiftBan ends a ban early, as Authority.LiftBan.
func (w *Writer) LiftBan(actor Actor, banID, reason string) (storage.Ban, error) {
	if err := checkID("ban_id", banID, true); err != nil {
		return storage.Ban{}, err
	}
	if err := checkText("reason", reason); err != nil {
		return storage.Ban{}, err
	}
	ban, err := w.tx.Ban(banID)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Ban{}, notFound("ban", banID)
	} else if err != nil {
		return storage.Ban{}, err
	}
	if ban.Lifted() {
		return storage.Ban{}, fmt.Errorf("%w: ban %s was lifted at %s by %s", ErrBanAlreadyLifted, ban.ID, ban.LiftTime.Format(time.RFC3339), ban.LiftedBy)
	}
	ban.LiftTime, ban.LiftedBy, ban.LiftReason = w.now, actor.Name, reason
	if err := w.tx.PutBan(ban); err != nil {
		return storage.Ban{}, err
	}
	if err := w.tx.Emit(storage.Event{Kind: storage.EventBanLifted, Time: w.now, Ban: &ban}); err != nil {
		return storage.Ban{}, err
	}
	return ban, w.tx.AppendAudit(storage.AuditRecord{
		ID: newID("aud_", w.now), Time: w.now, Action: "ban.lift", Actor: actor.Name, ActorAddr: actor.Addr, Channel: actor.Channel,
		TenantID: ban.TenantID, Subject: subjectString(ban.Kind, ban.Value), TargetID: ban.ID,
		Reason: reason, Policy: ban.Policy,
	})
}

// GetBan returns a ban in any state.
func (a *Authority) GetBan(ctx context.Context, banID string) (storage.Ban, error) {
	if err := checkID("ban_id", banID, true); err != nil {
		return storage.Ban{}, err
	}
	var ban storage.Ban
	err := a.store.View(ctx, func(tx storage.ReadTx) error {
		var err error
		if ban, err = tx.Ban(banID); errors.Is(err, storage.ErrNotFound) {
			return notFound("ban", banID)
		}
		return err
	})
	return ban, err
}

// BanState is where a ban is in its life at a given time.
type BanState int

const (
	AnyState BanState = iota
	StateActive
	StateExpired
	StateLifted
)

// StateAt returns b's state at now.
func StateAt(b storage.Ban, now time.Time) BanState {
	switch {
	case b.Lifted():
		return StateLifted
	case b.ExpiredAt(now):
		return StateExpired
	}
	return StateActive
}

// BanFilter selects bans to list.
type BanFilter struct {
	TenantID string // "" = every tenant, "*" = the every-tenant bans
	Kind     storage.SubjectKind
	State    BanState
}

// ListBans lists bans in ID (creation) order.
func (a *Authority) ListBans(ctx context.Context, f BanFilter, p Page) ([]storage.Ban, string, error) {
	if f.TenantID != "" && f.TenantID != storage.AllTenants {
		if err := checkID("tenant_id", f.TenantID, true); err != nil {
			return nil, "", err
		}
	}
	size, after, err := p.start("bans", f)
	if err != nil {
		return nil, "", err
	}
	now := a.now()
	var bans []storage.Ban
	var next string
	err = a.store.View(ctx, func(tx storage.ReadTx) error {
		var err error
		bans, next, err = collect("bans", f, size,
			tx.Bans(storage.BanQuery{TenantID: f.TenantID, Kind: f.Kind, After: after}),
			func(b storage.Ban) string { return b.ID },
			func(b storage.Ban) bool { return f.State == AnyState || StateAt(b, now) == f.State })
		return err
	})
	return bans, next, err
}

// CheckInput names the subjects to check.
type CheckInput struct {
	TenantID   string
	UserID     string
	IP         string
	DeviceID   string
	Capability string
}

// CheckBan reports whether the subjects may not act (at all, or with the
// capability), and every active ban that matches any of them.
func (a *Authority) CheckBan(ctx context.Context, in CheckInput) (banned bool, bans []storage.Ban, err error) {
	s := subjects{user: in.UserID, device: in.DeviceID}
	if s.tenant, err = tenant(in.TenantID, false); err != nil {
		return false, nil, err
	}
	if err := checkID("user_id", in.UserID, false); err != nil {
		return false, nil, err
	}
	if err := checkID("device_id", in.DeviceID, false); err != nil {
		return false, nil, err
	}
	if s.addr, err = ParseAddr("ip", in.IP); err != nil {
		return false, nil, err
	}
	if in.Capability != "" {
		if err := checkCapabilities("capability", []string{in.Capability}); err != nil {
			return false, nil, err
		}
	}
	if s.user == "" && s.device == "" && !s.addr.IsValid() {
		return false, nil, invalid("user_id", "name at least one of user_id, ip, device_id")
	}
	now := a.now()
	err = a.store.View(ctx, func(tx storage.ReadTx) error {
		bans = nil
		err := eachActiveBan(tx, s, now, func(b storage.Ban) bool {
			bans = append(bans, b)
			banned = banned || b.Full() || (in.Capability != "" && slices.Contains(b.Capabilities, in.Capability))
			return true
		})
		return err
	})
	return banned, bans, err
}
