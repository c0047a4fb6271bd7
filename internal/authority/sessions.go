package authority

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/token"
)

// refreshTokenPrefix makes refresh tokens recognisable to secret scanners.
const refreshTokenPrefix = "pcr_"

// refreshTokenBytes is the random part of a refresh token (newSecret's 256
// bits), and refreshTokenEncodedLen its length in the token (base64url
// without padding).
const refreshTokenBytes = 32

var refreshTokenEncodedLen = base64.RawURLEncoding.EncodedLen(refreshTokenBytes)

// SessionInput describes a login.
type SessionInput struct {
	TenantID   string
	UserID     string
	DeviceID   string
	ClientIP   string
	Attributes map[string]string
}

// Tokens are what a login or refresh hands out.
type Tokens struct {
	Session          storage.Session
	AccessToken      string
	RefreshToken     string
	AccessExpireTime time.Time
}

// accessToken is a signed access token and what it was signed for.
type accessToken struct {
	keyID      string
	session    string // session ID
	generation uint64
	token      string
	exp        time.Time
}

// sign signs an access token for s with key.
func (a *Authority) sign(key storage.SigningKey, s storage.Session, now time.Time) (accessToken, error) {
	exp := now.Add(a.cfg.AccessTTL)
	if exp.After(s.ExpireTime) {
		exp = s.ExpireTime
	}
	tok, err := token.Sign(&token.Claims{
		SessionID: s.ID, TenantID: s.TenantID, DeviceID: s.DeviceID,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: a.cfg.Issuer, Subject: s.UserID, Audience: jwt.ClaimStrings{a.cfg.Audience},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp),
		},
	}, key.ID, a.privateKey(key))
	// JWT times have second precision: report the expiry the token carries.
	return accessToken{keyID: key.ID, session: s.ID, generation: s.RefreshGeneration, token: tok, exp: exp.Truncate(time.Second)}, err
}

// presign signs an access token for s before the write transaction, with
// the signing key last seen, so that the Ed25519 signature is computed by
// the caller's goroutine and not inside the store's single writer. It
// returns the zero value when no key has been seen yet.
func (a *Authority) presign(s storage.Session, now time.Time) accessToken {
	key := a.current.Load()
	if key == nil {
		return accessToken{}
	}
	t, err := a.sign(*key, s, now)
	if err != nil {
		return accessToken{}
	}
	return t
}

// issue returns the access token for s: the presigned one when it was
// signed for this session state with the key that is current in tx (the
// usual case), otherwise a token signed now (the key rotated meanwhile,
// perhaps on another replica).
func (a *Authority) issue(tx storage.ReadTx, pre accessToken, s storage.Session, now time.Time) (accessToken, error) {
	key, err := currentKey(tx)
	if err != nil {
		return accessToken{}, err
	}
	if pre.token != "" && pre.keyID == key.ID && pre.session == s.ID && pre.generation == s.RefreshGeneration {
		return pre, nil
	}
	a.current.Store(&key)
	return a.sign(key, s, now)
}

// CreateSession logs a user in, unless a full ban matches the user, the
// device or the client address.
func (a *Authority) CreateSession(ctx context.Context, actor Actor, in SessionInput) (Tokens, error) {
	var s storage.Session
	var err error
	if s.TenantID, err = tenant(in.TenantID, false); err != nil {
		return Tokens{}, err
	}
	if err := checkID("user_id", in.UserID, true); err != nil {
		return Tokens{}, err
	}
	if err := checkID("device_id", in.DeviceID, false); err != nil {
		return Tokens{}, err
	}
	if s.ClientIP, err = ParseAddr("client_ip", in.ClientIP); err != nil {
		return Tokens{}, err
	}
	if err := checkAttributes(in.Attributes); err != nil {
		return Tokens{}, err
	}
	now := a.now()
	s.ID, s.UserID, s.DeviceID = newID("ses_", now), in.UserID, in.DeviceID
	if len(in.Attributes) > 0 {
		s.Attributes = maps.Clone(in.Attributes)
	}
	s.CreateTime, s.RefreshTime, s.ExpireTime = now, now, now.Add(a.cfg.SessionTTL)
	refresh := newSecret(refreshTokenPrefix)
	pre := a.presign(s, now)
	var out Tokens
	_, err = a.store.Update(ctx, func(tx storage.Tx) error {
		ban, err := refusal(tx, subjects{s.TenantID, s.UserID, s.DeviceID, s.ClientIP}, "", now)
		if err != nil {
			return err
		}
		if ban != nil {
			return ban
		}
		access, err := a.issue(tx, pre, s, now)
		if err != nil {
			return err
		}
		sess := s
		sess.AccessExpireTime = access.exp
		if err := tx.PutSession(sess); err != nil {
			return err
		}
		if err := tx.PutRefreshToken(storage.RefreshToken{Hash: hashSecret(refresh), SessionID: s.ID, ExpireTime: s.ExpireTime}); err != nil {
			return err
		}
		out = Tokens{Session: sess, AccessToken: access.token, RefreshToken: refresh, AccessExpireTime: access.exp}
		return tx.AppendAudit(storage.AuditRecord{
			ID: newID("aud_", now), Time: now, Action: "session.create", Actor: actor.Name, ActorAddr: actor.Addr, Channel: actor.Channel,
			TenantID: s.TenantID, Subject: subjectString(storage.SubjectUser, s.UserID), TargetID: s.ID,
		})
	})
	if err != nil {
		return Tokens{}, err
	}
	return out, nil
}

// RefreshSession rotates a refresh token. A superseded token revokes the
// whole session and fails with ErrTheftDetected.
func (a *Authority) RefreshSession(ctx context.Context, actor Actor, refreshToken, clientIP string) (Tokens, error) {
	if refreshToken == "" {
		return Tokens{}, invalid("refresh_token", "is required")
	}
	if !wellFormedRefreshToken(refreshToken) {
		return Tokens{}, fmt.Errorf("%w: not a refresh token of this authority", ErrTokenInvalid)
	}
	addr, err := ParseAddr("client_ip", clientIP)
	if err != nil {
		return Tokens{}, err
	}
	now := a.now()
	hash := hashSecret(refreshToken)
	pre, err := a.presignRefresh(ctx, hash, now)
	if err != nil {
		return Tokens{}, err
	}
	next := newSecret(refreshTokenPrefix)
	var out Tokens
	var theft bool
	_, err = a.store.Update(ctx, func(tx storage.Tx) error {
		out, theft = Tokens{}, false
		rt, err := tx.RefreshToken(hash)
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("%w: not a refresh token of this authority", ErrTokenInvalid)
		} else if err != nil {
			return err
		}
		s, err := tx.Session(rt.SessionID)
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("%w: session %s no longer exists", ErrSessionExpired, rt.SessionID)
		} else if err != nil {
			return err
		}
		switch {
		case rt.Generation != s.RefreshGeneration && s.Revoked():
			// A superseded token on a session already ended (by an earlier
			// reuse, or by racing copies of the same token): still a reuse,
			// reported as one to every presenter.
			return fmt.Errorf("%w: session %s was already revoked (%s)", ErrTheftDetected, s.ID, s.RevokeReason)
		case s.Revoked():
			return fmt.Errorf("%w: session %s was revoked (%s)", ErrSessionRevoked, s.ID, s.RevokeReason)
		case s.ExpiredAt(now):
			return fmt.Errorf("%w: session %s ended at %s", ErrSessionExpired, s.ID, s.ExpireTime.Format(time.RFC3339))
		case rt.Generation != s.RefreshGeneration:
			// Reuse of a superseded token: someone holds a copy. Revoke the
			// session (committed), then refuse.
			theft = true
			out.Session = s // for the log line below; never returned
			if err := revoke(tx, s, now, System.Name, "refresh token reuse"); err != nil {
				return err
			}
			return tx.AppendAudit(storage.AuditRecord{
				ID: newID("aud_", now), Time: now, Action: "session.theft", Actor: System.Name, ActorAddr: actor.Addr, Channel: actor.Channel,
				TenantID: s.TenantID, Subject: subjectString(storage.SubjectUser, s.UserID), TargetID: s.ID,
				Reason:  "superseded refresh token presented",
				Details: map[string]string{"presented_generation": fmt.Sprint(rt.Generation), "current_generation": fmt.Sprint(s.RefreshGeneration)},
			})
		}
		ban, err := refusal(tx, subjects{s.TenantID, s.UserID, s.DeviceID, addr}, "", now)
		if err != nil {
			return err
		}
		if ban != nil {
			return ban
		}
		s.RefreshGeneration++
		s.RefreshTime = now
		access, err := a.issue(tx, pre, s, now)
		if err != nil {
			return err
		}
		s.AccessExpireTime = access.exp
		if err := tx.PutSession(s); err != nil {
			return err
		}
		if err := tx.PutRefreshToken(storage.RefreshToken{Hash: hashSecret(next), SessionID: s.ID, Generation: s.RefreshGeneration, ExpireTime: s.ExpireTime}); err != nil {
			return err
		}
		out = Tokens{Session: s, AccessToken: access.token, RefreshToken: next, AccessExpireTime: access.exp}
		return nil
	})
	switch {
	case err != nil:
		return Tokens{}, err
	case theft:
		a.log.Warn("refresh token reuse: session revoked", "session_id", out.Session.ID, "peer", actor.Addr)
		return Tokens{}, ErrTheftDetected
	}
	return out, nil
}

// presignRefresh reads the session a refresh token belongs to and signs
// the token the rotation will hand out (see presign); the write
// transaction re-checks everything and signs again if anything moved.
//
// A hash the store does not know is refused here, in a read transaction,
// without entering the writer: an invalid token (guessed, swept, or from
// another authority) would otherwise cost a write transaction, dearer
// than this refusal (BENCHMARKS.md, "Refusing invalid refresh tokens"),
// and a flood of them would queue behind real writes. It
// cannot become known later: refresh tokens are handed out only after the
// rotation that stored them committed, and every later check (theft,
// revocation, expiry, bans) stays in the write transaction. Other read
// errors are left to the write transaction, which reports them.
func (a *Authority) presignRefresh(ctx context.Context, hash []byte, now time.Time) (accessToken, error) {
	var s storage.Session
	var unknown bool
	err := a.store.View(ctx, func(tx storage.ReadTx) error {
		rt, err := tx.RefreshToken(hash)
		if err != nil {
			unknown = errors.Is(err, storage.ErrNotFound)
			return err
		}
		s, err = tx.Session(rt.SessionID)
		return err
	})
	if unknown && refuseUnknownEarly {
		return accessToken{}, fmt.Errorf("%w: not a refresh token of this authority", ErrTokenInvalid)
	}
	if err != nil || s.Revoked() || s.ExpiredAt(now) {
		return accessToken{}, nil
	}
	s.RefreshGeneration++
	return a.presign(s, now), nil
}

// refuseUnknownEarly is presignRefresh's early refusal of unknown tokens;
// only the benchmark that measures what it saves turns it off.
var refuseUnknownEarly = true

// wellFormedRefreshToken reports whether t has the shape of the refresh
// tokens newSecret makes (the prefix and 256 bits, base64url without
// padding): anything else is refused before the store is read.
func wellFormedRefreshToken(t string) bool {
	rest, ok := strings.CutPrefix(t, refreshTokenPrefix)
	if !ok || len(rest) != refreshTokenEncodedLen {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	return err == nil && len(b) == refreshTokenBytes
}

// VerifyInput is an access token to check, with the request's context.
type VerifyInput struct {
	AccessToken string
	ClientIP    string
	Capability  string
}

// VerifySession checks an access token the way every mirror does, but
// against the store: signature, expiry, bans (user, device, IP), session
// revocation, then the capability.
func (a *Authority) VerifySession(ctx context.Context, in VerifyInput) (storage.Session, time.Time, error) {
	if in.AccessToken == "" {
		return storage.Session{}, time.Time{}, invalid("access_token", "is required")
	}
	addr, err := ParseAddr("client_ip", in.ClientIP)
	if err != nil {
		return storage.Session{}, time.Time{}, err
	}
	if in.Capability != "" {
		if err := checkCapabilities("capability", []string{in.Capability}); err != nil {
			return storage.Session{}, time.Time{}, err
		}
	}
	now := a.now()
	var s storage.Session
	var exp time.Time
	err = a.store.View(ctx, func(tx storage.ReadTx) error {
		keys, err := verificationKeys(tx, now)
		if err != nil {
			return err
		}
		if _, kid := token.PeekHeader(in.AccessToken); !isNativeKey(keys, kid) && kid != "" {
			// Not signed by this authority: an external issuer's (external.go).
			s, exp, err = a.verifyExternal(tx, in, addr, now)
			return err
		}
		claims, err := token.Verify(in.AccessToken, a.cfg.Issuer, now, func(kid string) (ed25519.PublicKey, bool) {
			for _, k := range keys {
				if k.ID == kid {
					return ed25519.PublicKey(k.PublicKey), true
				}
			}
			return nil, false
		}, token.WithAudience(a.cfg.Audience))
		switch {
		case errors.Is(err, token.ErrExpired):
			return ErrTokenExpired
		case err != nil:
			return ErrTokenInvalid
		}
		exp = claims.ExpireTime()
		ban, err := refusal(tx, subjects{claims.TenantID, claims.UserID(), claims.DeviceID, addr}, "", now)
		if err != nil {
			return err
		}
		if ban != nil {
			return ban
		}
		if s, err = tx.Session(claims.SessionID); errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("%w: session %s no longer exists", ErrSessionExpired, claims.SessionID)
		} else if err != nil {
			return err
		}
		if s.Revoked() {
			return fmt.Errorf("%w: session %s was revoked (%s)", ErrSessionRevoked, s.ID, s.RevokeReason)
		}
		if in.Capability != "" {
			ban, err := refusal(tx, subjects{claims.TenantID, claims.UserID(), claims.DeviceID, addr}, in.Capability, now)
			if err != nil {
				return err
			}
			if ban != nil {
				return ban
			}
		}
		return nil
	})
	return s, exp, err
}

// GetSession returns a session in any state.
func (a *Authority) GetSession(ctx context.Context, id string) (storage.Session, error) {
	if err := checkID("session_id", id, true); err != nil {
		return storage.Session{}, err
	}
	var s storage.Session
	err := a.store.View(ctx, func(tx storage.ReadTx) error {
		var err error
		if s, err = tx.Session(id); errors.Is(err, storage.ErrNotFound) {
			return notFound("session", id)
		}
		return err
	})
	return s, err
}

// SessionFilter selects sessions to list.
type SessionFilter struct {
	TenantID        string
	UserID          string
	DeviceID        string
	IncludeInactive bool
}

// ListSessions lists sessions in ID (creation) order; by default only live
// ones.
func (a *Authority) ListSessions(ctx context.Context, f SessionFilter, p Page) ([]storage.Session, string, error) {
	if f.TenantID != "" {
		if _, err := tenant(f.TenantID, false); err != nil {
			return nil, "", err
		}
	} else if f.UserID != "" || f.DeviceID != "" {
		return nil, "", invalid("tenant_id", "is required with user_id or device_id")
	}
	if err := checkID("user_id", f.UserID, false); err != nil {
		return nil, "", err
	}
	if err := checkID("device_id", f.DeviceID, false); err != nil {
		return nil, "", err
	}
	size, after, err := p.start("sessions", f)
	if err != nil {
		return nil, "", err
	}
	now := a.now()
	var out []storage.Session
	var next string
	err = a.store.View(ctx, func(tx storage.ReadTx) error {
		var err error
		out, next, err = collect("sessions", f, size,
			tx.Sessions(storage.SessionQuery{TenantID: f.TenantID, UserID: f.UserID, DeviceID: f.DeviceID, After: after}),
			func(s storage.Session) string { return s.ID },
			func(s storage.Session) bool { return f.IncludeInactive || (!s.Revoked() && !s.ExpiredAt(now)) })
		return err
	})
	return out, next, err
}

// RevokeSession revokes one session. It returns the session and the
// revision of the write.
func (a *Authority) RevokeSession(ctx context.Context, actor Actor, id, reason string) (storage.Session, int64, error) {
	if err := checkID("session_id", id, true); err != nil {
		return storage.Session{}, 0, err
	}
	if err := checkText("reason", reason); err != nil {
		return storage.Session{}, 0, err
	}
	now := a.now()
	var s storage.Session
	rev, err := a.store.Update(ctx, func(tx storage.Tx) error {
		var err error
		if s, err = tx.Session(id); errors.Is(err, storage.ErrNotFound) {
			return notFound("session", id)
		} else if err != nil {
			return err
		}
		if s.Revoked() {
			return fmt.Errorf("%w: session %s was revoked at %s", ErrSessionAlreadyRevoked, s.ID, s.RevokeTime.Format(time.RFC3339))
		}
		if err := revoke(tx, s, now, actor.Name, reason); err != nil {
			return err
		}
		s.RevokeTime, s.RevokedBy, s.RevokeReason = now, actor.Name, reason
		return tx.AppendAudit(storage.AuditRecord{
			ID: newID("aud_", now), Time: now, Action: "session.revoke", Actor: actor.Name, ActorAddr: actor.Addr, Channel: actor.Channel,
			TenantID: s.TenantID, Subject: subjectString(storage.SubjectUser, s.UserID), TargetID: s.ID, Reason: reason,
		})
	})
	if err != nil {
		return storage.Session{}, 0, err
	}
	a.log.Info("session revoked", "session_id", s.ID, "tenant_id", s.TenantID, "actor", actor.Name)
	return s, rev, nil
}

// userRevocation validates a revocation of every live session of a user
// in a tenant and returns the tenant and the revocation.
func userRevocation(actor Actor, tenantID, userID, reason string, now time.Time) (string, revocation, error) {
	tid, err := tenant(tenantID, false)
	if err != nil {
		return "", revocation{}, err
	}
	if err := checkID("user_id", userID, true); err != nil {
		return "", revocation{}, err
	}
	if err := checkText("reason", reason); err != nil {
		return "", revocation{}, err
	}
	return tid, revocation{
		pick: func(tx storage.ReadTx, after string, limit int) ([]storage.Session, error) {
			return liveSessions(tx, storage.SessionQuery{TenantID: tid, UserID: userID, After: after}, nil, now, limit)
		},
		by: actor.Name, reason: reason,
		audit: func(tx storage.Tx, n int, _ bool) error {
			return tx.AppendAudit(storage.AuditRecord{
				ID: newID("aud_", now), Time: now, Action: "session.revoke_user", Actor: actor.Name, ActorAddr: actor.Addr, Channel: actor.Channel,
				TenantID: tid, Subject: subjectString(storage.SubjectUser, userID), Reason: reason,
				Details: map[string]string{"revoked_sessions": fmt.Sprint(n)},
			})
		},
	}, nil
}

// RevokeUserSessions revokes every live session of a user in a tenant and
// returns how many, and the revision of the write (of the last one when
// the revocations were split; the current revision when there was nothing
// to revoke). Like CreateBan's, the revocations are one Update when the
// store takes it, else batches (see revokeAll), each with its own
// "session.revoke_user" audit record; a failure after the first batch
// committed is an *IncompleteError, and calling again revokes the rest.
func (a *Authority) RevokeUserSessions(ctx context.Context, actor Actor, tenantID, userID, reason string) (int, int64, error) {
	now := a.now()
	tid, rv, err := userRevocation(actor, tenantID, userID, reason, now)
	if err != nil {
		return 0, 0, err
	}
	n, rev, committed, err := a.revokeAll(ctx, rv, now)
	switch {
	case err != nil && committed:
		a.log.Error("revoking a user's sessions stopped part way", "tenant_id", tid, "revoked_sessions", n,
			"actor", actor.Name, "error", err)
		return n, rev, &IncompleteError{Revoked: n, Revision: rev, Err: err}
	case err != nil:
		return 0, 0, err
	}
	a.log.Info("user sessions revoked", "tenant_id", tid, "revoked_sessions", n, "actor", actor.Name)
	return n, rev, nil
}
