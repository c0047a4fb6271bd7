package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/token"
)

// CheckInput is the request context a token is checked in.
type CheckInput struct {
	// ClientIP is the caller's address (invalid: not checked against IP
	// bans). An IPv4-mapped IPv6 address is checked as IPv4.
	ClientIP netip.Addr
	// DeviceID is a device the request names (for example a header). Both
	// it and the token's "did" claim are checked when both are set.
	DeviceID string
	// Capability is what the request does ("post", "comment"; "" for
	// nothing that a capability ban could restrict).
	Capability string
}

// Session is a verified access token's session.
type Session struct {
	SessionID  string
	TenantID   string
	UserID     string
	DeviceID   string    // the "did" claim; "" when the session has none
	IssueTime  time.Time // the "iat" claim; zero when absent
	ExpireTime time.Time // the "exp" claim

	// Issuer is the "iss" of an external issuer's token (IssuerService);
	// "" for the authority's own. For an external token, TenantID is the
	// issuer's tenant, UserID and SessionID its user and session claims
	// (SessionID "" when the token has none), TokenID its "jti", and
	// Claims the token's whole JSON payload, for the claims a handler
	// needs (roles, email): decode it with encoding/json.
	Issuer  string
	TokenID string
	Claims  string
}

const (
	reasonUser   = pb.ErrorReason_USER_BANNED
	reasonDevice = pb.ErrorReason_DEVICE_BANNED
	reasonIP     = pb.ErrorReason_IP_BANNED
	reasonCap    = pb.ErrorReason_CAPABILITY_RESTRICTED
)

// Check verifies an access token against the mirror, in the authority's
// order (VerifySession gives the same answers):
//  1. the signature, with the mirror's keys, and the issuer:
//     ErrTokenInvalid (a token whose kid is not one of the authority's
//     keys is verified as an external issuer's: see external.go);
//  2. expiry: ErrTokenExpired;
//  3. an active full ban on the user, the device (the token's "did" claim
//     and in.DeviceID) or in.ClientIP, in the token's tenant or "*":
//     a *BanError (ErrUserBanned, ErrDeviceBanned, ErrIPBanned);
//  4. revocation of the session (for an external token, of its session
//     claim or of its jti): ErrSessionRevoked;
//  5. a ban restricting in.Capability: a *BanError
//     (ErrCapabilityRestricted).
//
// When the mirror has not heard from the authority within
// MirrorOptions.StaleAfter, or has not loaded its first snapshot, Check
// fails with ErrMirrorStale; with MirrorOptions.FailOpen it checks against
// what it has and logs every request it lets through.
//
// A token seen before costs no signature verification (see cache.go); the
// lookups of steps 3-5 run every time, so that a ban applies to cached
// tokens the moment it arrives. The returned Session is shared between the
// checks of one token: do not modify it. ctx is not used yet (a check
// never blocks); it is there so that the signature can stay when it does.
//
// Every check is counted by its result (MirrorStats.Checks).
func (m *Mirror) Check(ctx context.Context, tok string, in CheckInput) (*Session, error) {
	s, err := m.check(tok, in)
	m.checks.add(resultOf(err))
	return s, err
}

// check is Check, uncounted.
func (m *Mirror) check(tok string, in CheckInput) (*Session, error) {
	now := m.clock()
	st := m.state.Load()
	if st == nil {
		return nil, ErrMirrorStale
	}
	nowNs := now.UnixNano()
	stale := nowNs-m.lastHeard.Load() > m.staleAfter
	if stale && !m.opts.FailOpen {
		return nil, ErrMirrorStale
	}
	h := tokenHash(tok)
	e := m.cache.get(tok, h)
	if e == nil || e.keyGen != st.keyGen || (e.keyUntil != 0 && nowNs >= e.keyUntil) {
		var err error
		if st.isExternal(tok) {
			e, err = m.verifyExternal(st, tok, h, now) // external.go
		} else {
			e, err = m.verify(st, tok, h, now)
		}
		if err != nil {
			return nil, err
		}
		m.cache.put(e, nowNs)
	}
	if nowNs >= e.exp {
		return nil, ErrTokenExpired
	}
	s := subject{
		tenant: e.sess.TenantID, user: e.sess.UserID, userH: e.userH,
		device: e.sess.DeviceID, deviceH: e.deviceH,
		session: e.sessionKey(), sessionH: e.sessionH, token: e.tokKey, tokenH: e.tokH,
		ip: in.ClientIP, capability: in.Capability,
	}
	if in.DeviceID != "" && in.DeviceID != s.device {
		s.device2, s.device2H = in.DeviceID, strHash(in.DeviceID)
	}
	if err := st.refusal(&s, nowNs); err != nil {
		return nil, err
	}
	if stale {
		m.log.Warn("portcullis: mirror is stale; allowing the request (fail-open)",
			"staleness", time.Duration(nowNs-m.lastHeard.Load()), "session_id", e.sess.SessionID,
			"tenant_id", e.sess.TenantID, "user_id", e.sess.UserID, "client_ip", in.ClientIP, "capability", in.Capability)
	}
	return &e.sess, nil
}

// verify verifies a token not in the cache and returns its entry.
func (m *Mirror) verify(st *state, tok string, h uint64, now time.Time) (*verified, error) {
	nowNs := now.UnixNano()
	var keyUntil int64
	claims, err := token.Verify(tok, m.opts.Issuer, now, func(kid string) (ed25519.PublicKey, bool) {
		k, ok := st.keys[kid]
		if !ok || (k.until != 0 && nowNs >= k.until) {
			return nil, false
		}
		keyUntil = k.until
		return k.pub, true
	}, token.WithAudience(m.opts.Audience))
	switch {
	case errors.Is(err, token.ErrExpired):
		return nil, ErrTokenExpired
	case err != nil:
		return nil, fmt.Errorf("%w: %s", ErrTokenInvalid, strings.TrimPrefix(err.Error(), token.ErrInvalid.Error()+": "))
	}
	exp := claims.ExpireTime().UTC()
	e := &verified{
		// A copy: tok may be a slice of a larger string (a header) that
		// the cache should not keep alive.
		token: strings.Clone(tok), hash: h, exp: timeNanos(exp), keyUntil: keyUntil, keyGen: st.keyGen,
		sess: Session{
			SessionID: claims.SessionID, TenantID: claims.TenantID, UserID: claims.UserID(),
			DeviceID: claims.DeviceID, ExpireTime: exp,
		},
		userH: strHash(claims.UserID()), sessionH: strHash(claims.SessionID),
	}
	if claims.IssuedAt != nil {
		e.sess.IssueTime = claims.IssuedAt.UTC()
	}
	if claims.DeviceID != "" {
		e.deviceH = strHash(claims.DeviceID)
	}
	return e, nil
}

// subject is who a request is, with the hashes of its lookup keys.
type subject struct {
	tenant     string
	user       string
	userH      uint64
	device     string // the token's device
	deviceH    uint64
	device2    string // the request's device, when another
	device2H   uint64
	session    string
	sessionH   uint64
	token      string // an external token's revocation key by jti ("" for none)
	tokenH     uint64
	ip         netip.Addr
	capability string
}

// refusal returns the error that refuses s at now, or nil: steps 3-5 of
// Check. Track calls it too, so that a cancelled stream gets the error a
// check would.
func (st *state) refusal(s *subject, now int64) error {
	m := matcher{now: now, names: st.names, tenant: s.tenant, capability: s.capability}
	consider(&m, st.users.run(s.userH), s.user, reasonUser)
	if s.device != "" {
		consider(&m, st.devices.run(s.deviceH), s.device, reasonDevice)
	}
	if s.device2 != "" {
		consider(&m, st.devices.run(s.device2H), s.device2, reasonDevice)
	}
	if s.ip.IsValid() {
		st.ips.match(normalAddr(s.ip), &m)
	}
	if m.full != nil {
		return banError(m.full, m.fullReason, "")
	}
	if until, ok := st.revoked.get(s.sessionH, s.session); ok && now < until {
		return fmt.Errorf("%w: session %s", ErrSessionRevoked, printableKey(s.session))
	}
	if s.token != "" && st.jtiRevoked > 0 {
		if until, ok := st.revoked.get(s.tokenH, s.token); ok && now < until {
			return fmt.Errorf("%w: token %s", ErrSessionRevoked, printableKey(s.token))
		}
	}
	if m.restricted != nil {
		return banError(m.restricted, reasonCap, s.capability)
	}
	return nil
}

func banError(b *banRec, r pb.ErrorReason, capability string) *BanError {
	return &BanError{Reason: r, BanID: b.banID(), ExpireTime: b.expireTime(), Capability: capability}
}

// matcher picks the ban that refuses a request, as the authority does:
// the first kind with an active full ban wins (user, then device, then
// IP); within a kind, the ban that lasts longest; on a tie, the first one
// the authority would meet (the request's tenant before "*", then the
// older ban ID; IP prefixes longest first). Among the bans restricting the
// capability, the one that lasts longest.
type matcher struct {
	now        int64
	names      *interner
	tenant     string
	tidx       uint32
	resolved   bool
	capability string

	full       *banRec
	fullReason pb.ErrorReason
	restricted *banRec
}

// matches reports whether a ban in tenant index t applies to the request.
// The request's tenant is looked up only when a ban names a tenant other
// than "*": in the common case (no ban on the subject) never.
func (m *matcher) matches(t uint32) bool {
	if t == 0 {
		return true
	}
	if !m.resolved {
		m.tidx, m.resolved = m.names.tenant(m.tenant), true
	}
	return t == m.tidx
}

// consider looks at the bans of one subject: the entries of run whose key
// is k. Nothing is copied; the chosen bans point into the immutable state.
// Most runs are empty (no ban on the subject): that case is inlined into
// the caller, without a call.
func consider[K comparable](m *matcher, run []entry[K, banRec], k K, reason pb.ErrorReason) {
	if len(run) != 0 {
		considerRun(m, run, k, reason)
	}
}

func considerRun[K comparable](m *matcher, run []entry[K, banRec], k K, reason pb.ErrorReason) {
	var full, restricted *banRec
	for i := range run {
		b := &run[i].v
		if run[i].k != k || !b.activeAt(m.now) || !m.matches(b.tenant) {
			continue
		}
		switch {
		case b.full():
			if full == nil || lastsLonger(b, full) || (b.expire == full.expire && metFirst(b, full)) {
				full = b
			}
		case m.capability != "" && b.restricts(m.capability):
			if restricted == nil || lastsLonger(b, restricted) || (b.expire == restricted.expire && metFirst(b, restricted)) {
				restricted = b
			}
		}
	}
	if full != nil && (m.full == nil || (m.fullReason == reason && lastsLonger(full, m.full))) {
		m.full, m.fullReason = full, reason
	}
	if restricted != nil && (m.restricted == nil || lastsLonger(restricted, m.restricted)) {
		m.restricted = restricted
	}
}

// lastsLonger reports whether x ends after y (permanent is longest).
func lastsLonger(x, y *banRec) bool {
	switch {
	case x.expire == 0:
		return y.expire != 0
	case y.expire == 0:
		return false
	}
	return x.expire > y.expire
}

// metFirst reports whether the authority meets x before y among one
// subject's bans: the request's own tenant before "*", then by ban ID.
func metFirst(x, y *banRec) bool {
	if (x.tenant == 0) != (y.tenant == 0) {
		return y.tenant == 0
	}
	if (x.ext == nil || x.ext.id == "") && (y.ext == nil || y.ext.id == "") {
		return string(x.id[:]) < string(y.id[:])
	}
	return x.banID() < y.banID()
}
