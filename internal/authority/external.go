package authority

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/token"
)

// AttrIssuer is the attribute of the session VerifySession returns for an
// external token that names its issuer.
const AttrIssuer = "issuer"

// isNativeKey reports whether kid names one of the authority's own keys:
// a token whose kid does not is verified as an external issuer's.
func isNativeKey(keys []storage.SigningKey, kid string) bool {
	return slices.ContainsFunc(keys, func(k storage.SigningKey) bool { return k.ID == kid })
}

// ExternalIssuer converts a stored issuer into what token.VerifyExternal
// needs; keys that do not parse (none should: the fetcher parsed them)
// are left out.
func ExternalIssuer(rec storage.Issuer) *token.ExternalIssuer {
	is := &token.ExternalIssuer{
		Issuer: rec.URL, Audiences: rec.Audiences, UserClaim: rec.UserClaim, SessionClaim: rec.SessionClaim,
		Leeway: rec.Leeway, MaxLifetime: rec.MaxTokenLifetime, Keys: make(map[string]token.ExternalKey, len(rec.Keys)),
	}
	for _, k := range rec.Keys {
		algs := slices.DeleteFunc(slices.Clone(k.Algorithms), func(a string) bool { return !slices.Contains(rec.Algorithms, a) })
		if ek, err := token.ParseExternalKey(k.PublicKey, algs); err == nil {
			is.Keys[k.ID] = ek
		}
	}
	return is
}

// verifyExternal is VerifySession of a token that is not the authority's
// own: an external issuer's, checked against the issuer's stored keys and
// then exactly the ban lookups of a native token (the user in the
// issuer's tenant and "*", the IP, the capability). The session it
// returns is made up of the token's claims: the authority stores no
// session of an external issuer.
func (a *Authority) verifyExternal(tx storage.ReadTx, in VerifyInput, addr netip.Addr, now time.Time) (storage.Session, time.Time, error) {
	var rec storage.Issuer
	claims, err := token.VerifyExternal(in.AccessToken, now, func(iss string) (*token.ExternalIssuer, bool) {
		r, err := tx.Issuer(iss)
		if err != nil {
			return nil, false
		}
		rec = r
		return ExternalIssuer(r), true
	})
	switch {
	case errors.Is(err, token.ErrExpired):
		return storage.Session{}, time.Time{}, ErrTokenExpired
	case err != nil:
		if rec.URL != "" {
			if _, kid := token.PeekHeader(in.AccessToken); kid != "" && !slices.ContainsFunc(rec.Keys, func(k storage.IssuerKey) bool { return k.ID == kid }) {
				a.IssuerKeyMissing(rec.URL) // perhaps a rotation: refetch, at most once a minute
			}
		}
		return storage.Session{}, time.Time{}, fmt.Errorf("%w: %v", ErrTokenInvalid, err)
	}
	sub := subjects{rec.TenantID, claims.UserID, "", addr}
	if ban, err := refusal(tx, sub, "", now); err != nil || ban != nil {
		return storage.Session{}, time.Time{}, firstErr(err, ban)
	}
	if err := externalRevoked(tx, rec.URL, claims.SessionID, claims.TokenID, now); err != nil {
		return storage.Session{}, time.Time{}, err
	}
	if in.Capability != "" {
		if ban, err := refusal(tx, sub, in.Capability, now); err != nil || ban != nil {
			return storage.Session{}, time.Time{}, firstErr(err, ban)
		}
	}
	s := storage.Session{
		ID: claims.SessionID, TenantID: rec.TenantID, UserID: claims.UserID, ClientIP: addr,
		CreateTime: claims.IssueTime, ExpireTime: claims.ExpireTime, AccessExpireTime: claims.ExpireTime,
		Attributes: map[string]string{AttrIssuer: rec.URL},
	}
	return s, claims.ExpireTime, nil
}

func firstErr(err error, ban *BanError) error {
	if err != nil {
		return err
	}
	return ban
}
