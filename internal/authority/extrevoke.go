package authority

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// Revocations of external issuers' sessions and tokens. The authority
// stores no session of an external issuer, so a revocation names the
// issuer and the value of its session claim (or one token's jti), and is
// kept until no token it refuses can still be valid: the issuer's max
// token lifetime (plus its leeway) after the revocation, since the issuer
// only signs tokens that live at most that long and every verifier refuses
// longer ones. Then the fetcher's pass sweeps it (sweepExternalRevocations),
// and mirrors prune it by the same time (access_expire_time).

// maxSweepBatch bounds one sweeping Update (etcd bounds a transaction).
const maxSweepBatch = 64

// RevokeExternal revokes an external issuer's session sid, or (sid "")
// its token jti, audited ("session.revoke_external"). Revoking one already
// revoked is not an error: it returns the existing revocation and the
// store's revision. It returns the revision of the change, for a wait.
func (a *Authority) RevokeExternal(ctx context.Context, actor Actor, issuerURL, sid, jti, reason string) (storage.ExternalRevocation, int64, error) {
	var out storage.ExternalRevocation
	rev, err := a.Write(ctx, func(w *Writer) (err error) {
		out, err = w.RevokeExternal(actor, issuerURL, sid, jti, reason)
		return err
	})
	return out, rev, err
}

// RevokeExternal revokes an external issuer's session or token, as
// Authority.RevokeExternal.
func (w *Writer) RevokeExternal(actor Actor, issuerURL, sid, jti, reason string) (storage.ExternalRevocation, error) {
	if err := checkText("issuer", issuerURL); err != nil {
		return storage.ExternalRevocation{}, err
	}
	if (sid == "") == (jti == "") {
		return storage.ExternalRevocation{}, invalid("session_id", "with issuer, give the session (session_id) or one token (token_id), exactly one")
	}
	for field, v := range map[string]string{"session_id": sid, "token_id": jti} {
		if len(v) > maxIDLen {
			return storage.ExternalRevocation{}, invalid(field, "is longer than %d bytes", maxIDLen)
		}
		if err := checkText(field, v); err != nil {
			return storage.ExternalRevocation{}, err
		}
	}
	if err := checkText("reason", reason); err != nil {
		return storage.ExternalRevocation{}, err
	}
	is, err := w.Issuer(issuerURL)
	if err != nil {
		return storage.ExternalRevocation{}, err
	}
	now := w.now
	key := storage.ExternalRevocationKey(issuerURL, sid, jti)
	if old, err := w.tx.ExternalRevocation(key); err == nil && now.Before(old.KeepUntil) {
		return old, nil
	} else if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return storage.ExternalRevocation{}, err
	}
	out := storage.ExternalRevocation{
		Issuer: issuerURL, SessionID: sid, TokenID: jti, TenantID: is.TenantID, RevokeTime: now,
		KeepUntil: now.Add(is.MaxTokenLifetime + is.Leeway), Reason: reason, RevokedBy: actor.Name,
	}
	if err := w.tx.PutExternalRevocation(out); err != nil {
		return storage.ExternalRevocation{}, err
	}
	if err := w.tx.Emit(storage.Event{Kind: storage.EventExternalRevoked, Time: now, Revocation: &out}); err != nil {
		return storage.ExternalRevocation{}, err
	}
	target := "session:" + sid
	if jti != "" {
		target = "token:" + jti
	}
	return out, w.tx.AppendAudit(storage.AuditRecord{
		ID: newID("aud_", now), Time: now, Action: "session.revoke_external", Actor: actor.Name, ActorAddr: actor.Addr, Channel: actor.Channel,
		TenantID: is.TenantID, Subject: target, TargetID: issuerURL, Reason: reason,
		Details: map[string]string{"issuer": issuerURL, "keep_until": out.KeepUntil.Format(time.RFC3339)},
	})
}

// externalRevoked returns ErrSessionRevoked when the token's session or
// the token itself is revoked at now.
func externalRevoked(tx storage.ReadTx, issuerURL, sid, jti string, now time.Time) error {
	for _, k := range [][2]string{{sid, ""}, {"", jti}} {
		if k[0] == "" && k[1] == "" {
			continue
		}
		r, err := tx.ExternalRevocation(storage.ExternalRevocationKey(issuerURL, k[0], k[1]))
		switch {
		case errors.Is(err, storage.ErrNotFound):
			continue
		case err != nil:
			return err
		case now.Before(r.KeepUntil):
			what := "session " + sid
			if k[1] != "" {
				what = "token " + jti
			}
			return fmt.Errorf("%w: %s of %s was revoked (%s)", ErrSessionRevoked, what, issuerURL, r.Reason)
		}
	}
	return nil
}

// sweepExternalRevocations deletes the revocations past their KeepUntil,
// in batches; sweeping emits no event (mirrors prune by time).
func (a *Authority) sweepExternalRevocations(ctx context.Context) error {
	for {
		now := a.now()
		var keys []string
		if err := a.View(ctx, func(tx storage.ReadTx) error {
			keys = keys[:0]
			for r, err := range tx.ExternalRevocations() {
				if err != nil {
					return err
				}
				if !now.Before(r.KeepUntil) {
					keys = append(keys, r.Key())
					if len(keys) == maxSweepBatch {
						break
					}
				}
			}
			return nil
		}); err != nil || len(keys) == 0 {
			return err
		}
		if _, err := a.store.Update(ctx, func(tx storage.Tx) error {
			for _, k := range keys {
				if err := tx.DeleteExternalRevocation(k); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
		if len(keys) < maxSweepBatch {
			return nil
		}
	}
}

// externalRevocations streams the revocations still in force into a
// snapshot.
func streamExternalRevocations(tx storage.ReadTx, sink IssuerSink, now time.Time) error {
	for r, err := range tx.ExternalRevocations() {
		if err != nil {
			return err
		}
		if now.Before(r.KeepUntil) {
			if err := sink.ExternalRevocation(&r); err != nil {
				return err
			}
		}
	}
	return nil
}
