package client

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unsafe"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/token"
)

// Tokens of external OIDC issuers (IssuerService). The authority fetches
// each issuer's keys and sends them in the event stream (issuer_updated,
// issuer_deleted, Snapshot.issuers); the mirror keeps them in its state
// and never calls the identity provider: a key it does not have fails
// closed with ErrTokenInvalid. A verified external token is cached like a
// native one, and checked against the same bans (the user in the issuer's
// tenant and "*", device, IP, capability) and revocations.

// extIssuer is what the state keeps of an external issuer.
type extIssuer struct {
	tenant string
	v      *token.ExternalIssuer
}

// putIssuer replaces (or adds) an issuer from an issuer_updated event or
// a snapshot. Tokens cached before verify again (keyGen): the keys, the
// audiences or the tenant may have changed.
func (b *builder) putIssuer(x *pb.Issuer) {
	url := x.GetIssuer()
	if url == "" {
		return
	}
	is := &extIssuer{tenant: x.GetTenantId(), v: &token.ExternalIssuer{
		Issuer: url, Audiences: slices.Clone(x.GetAudiences()), UserClaim: x.GetUserClaim(),
		SessionClaim: x.GetSessionClaim(), Leeway: x.GetLeeway().AsDuration(),
		MaxLifetime: x.GetMaxTokenLifetime().AsDuration(), Keys: map[string]token.ExternalKey{},
	}}
	for _, k := range x.GetKeys() {
		algs := slices.DeleteFunc(slices.Clone(k.GetAlgorithms()), func(a string) bool { return !slices.Contains(x.GetAlgorithms(), a) })
		if ek, err := token.ParseExternalKey(k.GetPublicKey(), algs); err == nil {
			is.v.Keys[k.GetKeyId()] = ek
		}
	}
	b.ownIssuers()[url] = is
	b.s.keyGen++
}

// deleteIssuer forgets an issuer: its tokens are refused from now on.
func (b *builder) deleteIssuer(x *pb.Issuer) {
	if _, ok := b.s.issuers[x.GetIssuer()]; !ok {
		return
	}
	delete(b.ownIssuers(), x.GetIssuer())
	b.s.keyGen++
}

// ownIssuers makes the issuer map this builder's own (it is small: copied
// whole on change).
func (b *builder) ownIssuers() map[string]*extIssuer {
	if b.inPlace && b.s.issuers != nil {
		return b.s.issuers
	}
	m := make(map[string]*extIssuer, len(b.s.issuers)+1)
	for k, v := range b.s.issuers {
		m[k] = v
	}
	b.s.issuers = m
	return m
}

// isExternal reports whether a token is to be verified as an external
// issuer's: the state has issuers and the token's kid is not one of the
// authority's keys.
func (st *state) isExternal(tok string) bool {
	if len(st.issuers) == 0 {
		return false
	}
	_, kid := token.PeekHeader(tok)
	_, native := st.keys[kid]
	return !native
}

// verifyExternal verifies an external issuer's token not in the cache and
// returns its entry.
func (m *Mirror) verifyExternal(st *state, tok string, h uint64, now time.Time) (*verified, error) {
	var is *extIssuer
	claims, err := token.VerifyExternal(tok, now, func(iss string) (*token.ExternalIssuer, bool) {
		var ok bool
		is, ok = st.issuers[iss]
		if !ok {
			return nil, false
		}
		return is.v, true
	})
	switch {
	case errors.Is(err, token.ErrExpired):
		return nil, ErrTokenExpired
	case err != nil:
		return nil, fmt.Errorf("%w: %s", ErrTokenInvalid, strings.TrimPrefix(err.Error(), token.ErrInvalid.Error()+": "))
	}
	e := &verified{
		token: strings.Clone(tok), hash: h, exp: timeNanos(claims.ExpireTime), keyGen: st.keyGen,
		sess: Session{
			SessionID: claims.SessionID, TenantID: is.tenant, UserID: claims.UserID,
			IssueTime: claims.IssueTime, ExpireTime: claims.ExpireTime,
			Issuer: claims.Issuer, TokenID: claims.TokenID, Claims: unsafeString(claims.Raw),
		},
		userH: strHash(claims.UserID),
	}
	// The token counts as expired once exp + leeway has passed, as
	// VerifyExternal judged it.
	e.exp = timeNanos(claims.ExpireTime.Add(is.v.Leeway))
	e.revKey = revocationKey(&e.sess)
	e.sessionH = strHash(e.revKey)
	if e.tokKey = tokenRevocationKey(&e.sess); e.tokKey != "" {
		e.tokH = strHash(e.tokKey)
	}
	return e, nil
}

// sessionKey is the key of the entry's session revocation.
func (e *verified) sessionKey() string {
	if e.sess.Issuer == "" {
		return e.sess.SessionID
	}
	return e.revKey
}

// revocationKey is the key under which the mirror holds a session's
// revocation: its ID for the authority's sessions, the issuer and its sid
// for an external issuer's (two issuers may use the same sid).
func revocationKey(s *Session) string {
	if s.Issuer == "" {
		return s.SessionID
	}
	return externalSessionKey(s.Issuer, s.SessionID)
}

// externalSessionKey and externalTokenKey are the keys of the
// revocations of an external issuer's session and of one of its tokens
// (by jti) in the state's revoked index, where the authority's sessions
// are by ID: the prefix and the NUL keep the three apart.
func externalSessionKey(issuer, sid string) string {
	if sid == "" {
		return ""
	}
	return "ext\x00sid\x00" + issuer + "\x00" + sid
}

func externalTokenKey(issuer, jti string) string {
	if jti == "" {
		return ""
	}
	return extTokenPrefix + issuer + "\x00" + jti
}

const extTokenPrefix = "ext\x00jti\x00"

// tokenRevocationKey is the key of the revocation of a session's token by
// its jti: "" for the authority's tokens (revoked by session only).
func tokenRevocationKey(s *Session) string {
	if s.Issuer == "" {
		return ""
	}
	return externalTokenKey(s.Issuer, s.TokenID)
}

// revokedKey is the key a revoked_session event or snapshot entry is held
// under: the session ID, or for an external issuer's, the key of its
// session or its token.
func revokedKey(r *pb.RevokedSession) string {
	switch {
	case r.GetIssuer() == "":
		return r.GetSessionId()
	case r.GetTokenId() != "":
		return externalTokenKey(r.GetIssuer(), r.GetTokenId())
	}
	return externalSessionKey(r.GetIssuer(), r.GetSessionId())
}

// printableKey shows a revocation key in an error: an external key's NUL
// separators as spaces.
func printableKey(k string) string {
	if !strings.HasPrefix(k, "ext\x00") {
		return k
	}
	return strings.ReplaceAll(strings.TrimPrefix(k, "ext\x00"), "\x00", " ")
}

// unsafeString views b as a string without copying: VerifyExternal's Raw
// is a fresh decoding of the token's payload that nothing modifies, and a
// first-seen check should not copy a kilobyte of claims once more.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
