package authority

import (
	"context"
	"crypto/ed25519"
	"errors"
	"slices"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/token"
)

// The token_type_hint values of RFC 7009 §2.1 that RevokeToken knows.
const (
	TokenHintRefresh = "refresh_token"
	TokenHintAccess  = "access_token"
)

// tokenRevokeReason is the revocation reason RevokeToken records.
const tokenRevokeReason = "token revoked by its client (RFC 7009)"

// RevokeToken is RFC 7009 token revocation: tok is one of this authority's
// refresh tokens (any generation: a superseded one names the session as
// well as the current one) or access tokens, and the session it belongs
// to is revoked. RFC 7009 §2.1 lets the server revoke the whole grant:
// that is the only revocation Portcullis has (an access token is refused
// by its session's revocation), and revoking the session also ends the
// refresh token, as §2.1 asks when a refresh token is revoked.
//
// hint (token_type_hint) says which kind to try first; the other is
// tried after, and an unknown hint is ignored (§2.1: the server may).
// An access token must carry a valid signature by one of the authority's
// stored keys and its issuer and audience; its expiry is ignored, because
// revoking the session of an expired token is harmless and the session
// may outlive the token by far.
//
// Anything that names no live session (unknown, malformed, another
// issuer's, already revoked or ended) revokes nothing and is no error
// (§2.2: the client cannot act on it): revoked is false. Otherwise the
// session is revoked (a session_revoked event, as RevokeSession writes)
// and audited as "session.revoke_token", and rev is the write's revision.
func (a *Authority) RevokeToken(ctx context.Context, actor Actor, tok, hint string) (revoked bool, rev int64, err error) {
	if tok == "" {
		return false, 0, invalid("token", "is required")
	}
	now := a.now()
	kinds := []string{TokenHintRefresh, TokenHintAccess}
	if hint == TokenHintAccess {
		slices.Reverse(kinds)
	}
	var sessionID, kind string
	err = a.store.View(ctx, func(tx storage.ReadTx) error {
		for _, k := range kinds {
			var err error
			if k == TokenHintRefresh {
				sessionID, err = refreshTokenSession(tx, tok)
			} else {
				sessionID, err = a.accessTokenSession(tx, tok, now)
			}
			if err != nil || sessionID != "" {
				kind = k
				return err
			}
		}
		return nil
	})
	if err != nil || sessionID == "" {
		return false, 0, err
	}
	var s storage.Session
	rev, err = a.store.Update(ctx, func(tx storage.Tx) error {
		revoked = false
		var err error
		if s, err = tx.Session(sessionID); errors.Is(err, storage.ErrNotFound) {
			return nil // swept meanwhile
		} else if err != nil {
			return err
		}
		if s.Revoked() || s.ExpiredAt(now) {
			return nil // nothing left to end; §2.2 answers success all the same
		}
		if err := revoke(tx, s, now, actor.Name, tokenRevokeReason); err != nil {
			return err
		}
		revoked = true
		return tx.AppendAudit(storage.AuditRecord{
			ID: newID("aud_", now), Time: now, Action: "session.revoke_token", Actor: actor.Name, ActorAddr: actor.Addr, Channel: actor.Channel,
			TenantID: s.TenantID, Subject: subjectString(storage.SubjectUser, s.UserID), TargetID: s.ID, Reason: tokenRevokeReason,
			Details: map[string]string{"token_type": kind},
		})
	})
	if err != nil || !revoked {
		return false, 0, err
	}
	a.log.Info("session revoked by token revocation", "session_id", s.ID, "tenant_id", s.TenantID, "token_type", kind, "actor", actor.Name)
	return true, rev, nil
}

// refreshTokenSession returns the session tok is a refresh token of, or ""
// when it is none of this authority's (by its shape, then its hash).
func refreshTokenSession(tx storage.ReadTx, tok string) (string, error) {
	if !wellFormedRefreshToken(tok) {
		return "", nil
	}
	rt, err := tx.RefreshToken(hashSecret(tok))
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	return rt.SessionID, nil
}

// accessTokenSession returns the session tok is an access token of, or ""
// when it is none of this authority's. Every stored key is tried, retired
// ones too: a key past its verification overlap still proves the token
// was this authority's, which is all a revocation needs. Expiry is
// ignored, issuer and audience are not.
func (a *Authority) accessTokenSession(tx storage.ReadTx, tok string, now time.Time) (string, error) {
	keys := map[string]ed25519.PublicKey{}
	for k, err := range tx.SigningKeys() {
		if err != nil {
			return "", err
		}
		if k.Algorithm == "" || k.Algorithm == token.Algorithm { // access tokens are EdDSA only
			keys[k.ID] = ed25519.PublicKey(k.PublicKey)
		}
	}
	claims, err := token.Verify(tok, a.cfg.Issuer, now, func(kid string) (ed25519.PublicKey, bool) {
		k, ok := keys[kid]
		return k, ok
	}, token.WithAudience(a.cfg.Audience))
	switch {
	case err == nil:
		return claims.SessionID, nil
	case errors.Is(err, token.ErrExpired) && claims != nil:
		// Verify checked the signature but, as golang-jwt does, stopped
		// at the expiry: check the rest here.
		if claims.Issuer != a.cfg.Issuer || !slices.Contains(claims.Audience, a.cfg.Audience) {
			return "", nil
		}
		return claims.SessionID, nil
	default:
		return "", nil
	}
}
