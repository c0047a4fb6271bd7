package receiver

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/ssf"
)

// maxSETLen bounds one SET (a pushed body, or one of a poll's).
const maxSETLen = 64 << 10

// Receive handles one pushed SET (RFC 8935): authHeader must be the
// Authorization this receiver gave the transmitter. It returns nil once
// the SET was applied and recorded, after every SET it names as its
// predecessor (ssf.SET.PrevJTI).
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
	it, err := r.prepare(ctx, t, string(body), r.cfg.PushMaxAge)
	if it == nil {
		return err
	}
	// A verified SET goes through the sequencer even when its event is
	// refused: it then takes its place in the chain, and the SETs naming
	// it as predecessor do not wait for it in vain.
	return r.sequencer(t.ID).submit(ctx, it)
}

// item is one verified SET on its way to being applied.
type item struct {
	t      storage.SignalTransmitter
	set    ssf.SET
	act    action
	maxAge time.Duration // bounds its iat's age; its mark is kept as long
	// refusal: why its event cannot be applied (plan); the SET was
	// verified, so it is answered in its place in the stream's order.
	refusal error
	// Set by each run of the transaction that applies it.
	acted, dup bool
	// err is its outcome; done is closed once it is known.
	err  error
	done chan struct{}
}

// prepare verifies one SET of t and reads its action. A SET that does
// not verify is refused (nil item, counted); one whose event cannot be
// applied is returned with its refusal, which applyRun answers.
func (r *Receiver) prepare(ctx context.Context, t storage.SignalTransmitter, raw string, maxAge time.Duration) (*item, error) {
	r.count(func(s *Stats) { s.Received++ })
	set, err := r.verify(ctx, &t, raw, maxAge)
	if err != nil {
		r.refused(err)
		return nil, err
	}
	it := &item{t: t, set: set, maxAge: maxAge, done: make(chan struct{})}
	it.act, it.refusal = r.plan(t, set)
	return it, it.refusal
}

// write applies it in w's transaction and marks it received, with an
// audit record when it acted; a SET received before is left alone (dup).
func (r *Receiver) write(w *authority.Writer, it *item) error {
	it.acted, it.dup = false, false
	key := storage.ReceivedSETKey(it.t.ID, it.set.JTI)
	if _, err := w.Tx().ReceivedSET(key); err == nil {
		it.dup = true
		return nil
	} else if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	acted, err := r.act(w, it.t, it.act)
	if err != nil {
		return err
	}
	it.acted = acted
	return r.mark(w.Tx(), it)
}

// mark records it as received (and, when it acted, its audit record).
func (r *Receiver) mark(tx storage.Tx, it *item) error {
	now := r.now()
	ev := it.act.ev
	if err := tx.PutReceivedSET(storage.ReceivedSET{
		Transmitter: it.t.ID, JTI: it.set.JTI, Event: ev.uri, ReceiveTime: now,
		KeepUntil: it.set.IssuedAt.Add(it.maxAge + r.cfg.MaxSkew),
	}); err != nil {
		return err
	}
	if !it.acted {
		return nil
	}
	return tx.AppendAudit(storage.AuditRecord{
		ID: authority.NewID("aud_", now), Time: now, Action: "signal.apply", Actor: actor(it.t.ID).Name,
		Channel: authority.ChannelSignals, TenantID: ev.tenant, Subject: ev.subject, Reason: ev.reason, Policy: ev.policy,
		Details: map[string]string{"jti": it.set.JTI, "transmitter": it.t.ID, "event": ev.uri, "issuer": it.t.Issuer},
	})
}

// applyRun applies a run of SETs, in order, in one transaction: one
// durable commit for the run. A run more than the store takes in one
// transaction (etcd's --max-txn-ops) is applied in halves, in order. When
// the transaction fails otherwise (a SET of it refused) each SET is
// applied alone. A failure of our own (the store) leaves that SET and
// every later one of the run unapplied, with that error, for the
// transmitter to deliver again in order. Each item's err is set.
func (r *Receiver) applyRun(ctx context.Context, run []*item) {
	if slices.ContainsFunc(run, func(it *item) bool { return it.refusal != nil }) {
		// Refused by plan: answered, nothing written; the others go on.
		var todo []*item
		for _, it := range run {
			if it.refusal != nil {
				r.finish(it, it.refusal)
			} else {
				todo = append(todo, it)
			}
		}
		run = todo
	}
	if len(run) > 1 {
		_, err := r.auth.Write(ctx, func(w *authority.Writer) error {
			for _, it := range run {
				if err := r.write(w, it); err != nil {
					return err
				}
			}
			return nil
		})
		switch {
		case err == nil:
			for _, it := range run {
				r.finish(it, nil)
			}
			return
		case errors.Is(err, storage.ErrTxnTooLarge):
			half := len(run) / 2
			r.applyRun(ctx, run[:half])
			if err := run[half-1].err; err != nil && !isRefusal(err) && !errors.Is(err, ErrSETReplayed) {
				failAll(run[half:], err)
				return
			}
			r.applyRun(ctx, run[half:])
			return
		}
	}
	for i, it := range run {
		err := r.applyOne(ctx, it)
		r.finish(it, err)
		if err != nil && !isRefusal(err) {
			failAll(run[i+1:], err)
			return
		}
	}
}

// failAll leaves items unapplied with err, a failure of our own that came
// before them in the run: the transmitter delivers them again, in order.
func failAll(items []*item, err error) {
	for _, it := range items {
		it.err = err
	}
}

// applyOne applies one SET in one transaction, or, when its writes are
// more than the store takes in one (etcd's --max-txn-ops: a ban or a
// revocation of a user with many sessions), in several (applySplit).
func (r *Receiver) applyOne(ctx context.Context, it *item) error {
	_, err := r.auth.Write(ctx, func(w *authority.Writer) error { return r.write(w, it) })
	if errors.Is(err, storage.ErrTxnTooLarge) {
		return r.applySplit(ctx, it)
	}
	return err
}

// applySplit applies a ban or a revocation of every session of a user
// through the authority's methods that split their revocations over
// several Updates. The ban commits with the SET's mark (BanInput.Also); a
// revocation is marked after it, since a repeat revokes nothing more.
func (r *Receiver) applySplit(ctx context.Context, it *item) error {
	markAfter := func() error {
		_, err := r.auth.Write(ctx, func(w *authority.Writer) error { return r.mark(w.Tx(), it) })
		return err
	}
	a, by := it.act, actor(it.t.ID)
	switch {
	case a.kind == kindBan:
		_, bans, err := r.auth.CheckBan(ctx, authority.CheckInput{TenantID: lookupTenant(it.t), UserID: a.subj.user})
		if err != nil {
			return err
		}
		it.acted = true
		if len(own(bans, it.t, a.subj.user)) > 0 {
			return markAfter()
		}
		in := r.banInput(it.t, a, r.now())
		in.Also = func(tx storage.Tx) error { return r.mark(tx, it) }
		_, _, err = r.auth.CreateBan(ctx, by, in)
		return err
	case a.kind == kindRevoke && a.subj.user != "":
		if err := r.checkRevokeTenant(a); err != nil {
			return err
		}
		if _, _, err := r.auth.RevokeUserSessions(ctx, by, a.ev.tenant, a.subj.user, a.ev.reason); err != nil {
			return err
		}
		it.acted = true
		return markAfter()
	}
	return fmt.Errorf("applying SET %.128q: %w", it.set.JTI, storage.ErrTxnTooLarge)
}

// finish records its outcome: counted, logged, and, for a SET received
// before, ErrSETReplayed.
func (r *Receiver) finish(it *item, err error) {
	switch {
	case err != nil:
		if isRefusal(err) {
			r.refused(err)
		}
	case it.dup:
		r.count(func(s *Stats) { s.Duplicates++ })
		err = fmt.Errorf("%w: jti %.128q from transmitter %s was received before; nothing applied", ErrSETReplayed, it.set.JTI, it.t.ID)
	default:
		r.count(func(s *Stats) { s.Applied++ })
		if it.acted {
			r.log.Info("signal applied", "transmitter", it.t.ID, "event", it.act.name, "jti", it.set.JTI, "user", it.act.subj.user)
		} else if it.act.kind == kindRevoke {
			r.log.Info("signal names a session of an issuer not registered here and no user: nothing to revoke",
				"transmitter", it.t.ID, "jti", it.set.JTI, "issuer", it.act.subj.sessionIssuer)
		}
	}
	it.err = err
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
