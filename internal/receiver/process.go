package receiver

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/ssf"
)

// maxSETLen bounds one SET (a pushed body, or one of a poll's).
const maxSETLen = 64 << 10

// Receive handles one pushed SET (RFC 8935): authHeader must be the
// Authorization this receiver gave the transmitter. It returns nil when the
// SET was applied and recorded.
func (r *Receiver) Receive(ctx context.Context, id, authHeader string, body []byte) error {
	t, err := r.Get(ctx, id)
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(authHeader))
	if t.DeliveryMethod != ssf.DeliveryPush || len(t.PushSecretHash) == 0 ||
		subtle.ConstantTimeCompare(sum[:], t.PushSecretHash) != 1 {
		r.count(func(s *Stats) { s.Refused["PUSH_UNAUTHORIZED"]++ })
		return fmt.Errorf("%w: the Authorization header is not the one this receiver gave transmitter %s", ErrPushUnauthorized, id)
	}
	return r.process(ctx, t, string(body), r.cfg.PushMaxAge)
}

// process verifies one SET of t, refuses a replay, applies it and records
// it. maxAge bounds its iat's age.
func (r *Receiver) process(ctx context.Context, t storage.SignalTransmitter, raw string, maxAge time.Duration) error {
	r.count(func(s *Stats) { s.Received++ })
	set, err := r.verify(ctx, &t, raw, maxAge)
	if err != nil {
		r.refused(err)
		return err
	}
	m := r.lock(t.ID)
	m.Lock()
	defer m.Unlock()
	key := storage.ReceivedSETKey(t.ID, set.JTI)
	err = r.auth.View(ctx, func(tx storage.ReadTx) error {
		_, err := tx.ReceivedSET(key)
		return err
	})
	switch {
	case err == nil:
		r.count(func(s *Stats) { s.Duplicates++ })
		return fmt.Errorf("%w: jti %.128q from transmitter %s was received before; nothing applied", ErrSETReplayed, set.JTI, t.ID)
	case !errors.Is(err, storage.ErrNotFound):
		return err
	}
	// mark records the SET (and, when it was applied, its audit record).
	mark := func(tx storage.Tx, ev applied, applied bool) error {
		now := r.now()
		if err := tx.PutReceivedSET(storage.ReceivedSET{
			Transmitter: t.ID, JTI: set.JTI, Event: ev.uri, ReceiveTime: now,
			KeepUntil: set.IssuedAt.Add(maxAge + r.cfg.MaxSkew),
		}); err != nil {
			return err
		}
		if !applied {
			return nil
		}
		return tx.AppendAudit(storage.AuditRecord{
			ID: authority.NewID("aud_", now), Time: now, Action: "signal.apply", Actor: actor(t.ID).Name,
			Channel: authority.ChannelSignals, TenantID: ev.tenant, Subject: ev.subject, Reason: ev.reason, Policy: ev.policy,
			Details: map[string]string{"jti": set.JTI, "transmitter": t.ID, "event": ev.uri, "issuer": t.Issuer},
		})
	}
	ev, applied, marked, err := r.apply(ctx, t, set, mark)
	if err != nil {
		r.refused(err)
		return err
	}
	if !marked {
		_, err = r.auth.Update(ctx, func(tx storage.Tx) error { return mark(tx, ev, applied) })
	}
	if err != nil {
		// The action stands; a redelivery applies it again, which bans
		// and revocations tolerate.
		return err
	}
	r.count(func(s *Stats) { s.Applied++ })
	return nil
}

// refused counts a refusal by its reason.
func (r *Receiver) refused(err error) {
	reason := "OTHER"
	for _, s := range []struct {
		err  error
		name string
	}{
		{ErrSETInvalid, "SET_INVALID"}, {ErrSETKey, "SET_KEY_INVALID"}, {ErrSETIssuer, "SET_ISSUER_INVALID"},
		{ErrSETAudience, "SET_AUDIENCE_INVALID"}, {authority.ErrInvalidArgument, "INVALID_ARGUMENT"},
	} {
		if errors.Is(err, s.err) {
			reason = s.name
			break
		}
	}
	r.count(func(s *Stats) { s.Refused[reason]++ })
}

// verify checks raw with t's keys, refetching them once when its kid is
// unknown.
func (r *Receiver) verify(ctx context.Context, t *storage.SignalTransmitter, raw string, maxAge time.Duration) (ssf.SET, error) {
	if len(raw) > maxSETLen {
		return ssf.SET{}, fmt.Errorf("%w: larger than %d bytes", ErrSETInvalid, maxSETLen)
	}
	for attempt := 0; ; attempt++ {
		unknown := false
		set, err := ssf.Verify(raw, ssf.VerifyOptions{
			Issuer: t.Issuer, Audience: t.Audience, Now: r.now(), MaxAge: maxAge, MaxSkew: r.cfg.MaxSkew,
			Key: func(kid string) (crypto.PublicKey, []string, bool) {
				for _, k := range t.Keys {
					if k.ID == kid {
						pub, err := x509.ParsePKIXPublicKey(k.PublicKey)
						return pub, k.Algorithms, err == nil
					}
				}
				unknown = true
				return nil, nil, false
			},
		})
		if err == nil {
			if set.JTI == "" || len(set.JTI) > 256 || strings.IndexByte(set.JTI, 0) >= 0 {
				return set, fmt.Errorf("%w: its jti is missing, longer than 256 bytes or holds a NUL", ErrSETInvalid)
			}
			return set, nil
		}
		if unknown && attempt == 0 && r.refreshKeys(ctx, t) {
			continue
		}
		return set, verifyError(err)
	}
}

// verifyError maps ssf.Verify's RFC 8935 codes onto the sentinels.
func verifyError(err error) error {
	var ve *ssf.VerifyError
	if !errors.As(err, &ve) {
		return fmt.Errorf("%w: %v", ErrSETInvalid, err)
	}
	switch ve.Code {
	case "invalid_key":
		return fmt.Errorf("%w: %s", ErrSETKey, ve.Msg)
	case "invalid_issuer":
		return fmt.Errorf("%w: %s", ErrSETIssuer, ve.Msg)
	case "invalid_audience":
		return fmt.Errorf("%w: %s", ErrSETAudience, ve.Msg)
	}
	return fmt.Errorf("%w: %s", ErrSETInvalid, ve.Msg)
}
