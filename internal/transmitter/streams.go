package transmitter

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/ssf"
)

// Stream statuses (SSF 1.0 §8.1.2).
const (
	StatusEnabled  = "enabled"
	StatusPaused   = "paused"
	StatusDisabled = "disabled"
)

// SET signing algorithms a stream may choose.
const (
	AlgEdDSA = "EdDSA"
	AlgRS256 = "RS256"
)

// Supported is the event types this transmitter sends: a stream's
// events_delivered is its events_requested intersected with these.
var Supported = []string{ssf.EventSessionRevoked, ssf.EventAccountDisabled, ssf.EventAccountEnabled, ssf.EventVerification}

// Bounds of what a receiver may store in a stream.
const (
	maxEventsRequested = 64
	maxFieldLen        = 2048
	maxAuthHeader      = 4096
	maxSubjects        = 10000
	// MaxInFlight bounds a push stream's portcullis_max_in_flight: the
	// SETs one stream may have signed and unacknowledged at once.
	MaxInFlight = 256
	// MaxStreamsPerKey bounds the streams one API key creates: each push
	// stream is a worker on every replica.
	MaxStreamsPerKey = 50
)

// Caller is who manages a stream: the API key's ID owns the streams it
// creates; an admin key manages every stream.
type Caller struct {
	KeyID, KeyName string
	Admin          bool
	Actor          authority.Actor
}

// StreamInput is a receiver's stream configuration: the SSF fields it
// supplies, and SigningAlg, this transmitter's extension ("signing_alg":
// "EdDSA", the default, or "RS256", for receivers without Ed25519).
type StreamInput struct {
	Config     ssf.StreamConfig
	SigningAlg string
}

// Configuration is the transmitter configuration metadata
// (/.well-known/ssf-configuration, SSF 1.0 §7).
func (t *Transmitter) Configuration() ssf.TransmitterConfig {
	base := strings.TrimSuffix(t.cfg.Issuer, "/")
	return ssf.TransmitterConfig{
		SpecVersion:              "1_0",
		Issuer:                   t.cfg.Issuer,
		JWKSURI:                  base + "/.well-known/jwks.json",
		DeliveryMethodsSupported: []string{ssf.DeliveryPush, ssf.DeliveryPoll},
		ConfigurationEndpoint:    base + "/ssf/streams",
		StatusEndpoint:           base + "/ssf/status",
		AddSubjectEndpoint:       base + "/ssf/subjects:add",
		RemoveSubjectEndpoint:    base + "/ssf/subjects:remove",
		VerificationEndpoint:     base + "/ssf/verify",
		AuthorizationSchemes:     []ssf.AuthorizationScheme{{SpecURN: "urn:ietf:rfc:6750"}},
		DefaultSubjects:          "ALL",
	}
}

// wire is the SSF view of a stream record.
func (t *Transmitter) wire(st storage.SignalStream) ssf.StreamConfig {
	return ssf.StreamConfig{
		StreamID:        st.ID,
		Issuer:          t.cfg.Issuer,
		Audience:        slices.Clone(st.Audience),
		EventsSupported: slices.Clone(Supported),
		EventsRequested: slices.Clone(st.EventsRequested),
		EventsDelivered: slices.Clone(st.EventsDelivered),
		// authorization_header is the receiver's secret: stored to be sent,
		// never returned (a listing by an admin key would show it).
		Delivery:                &ssf.Delivery{Method: st.DeliveryMethod, EndpointURL: st.EndpointURL, MaxInFlight: st.MaxInFlight},
		MinVerificationInterval: int(t.cfg.MinVerificationInterval.Seconds()),
		Description:             st.Description,
	}
}

// configure sets st's receiver-supplied fields from in. replace sets every
// one (create, PUT): an absent field takes its default; otherwise (PATCH)
// only the fields present change. Transmitter-supplied fields in the
// request are ignored (SSF 1.0 §8.1.1).
func (t *Transmitter) configure(st *storage.SignalStream, in StreamInput, replace bool) error {
	c := in.Config
	if replace || c.EventsRequested != nil {
		if len(c.EventsRequested) > maxEventsRequested {
			return invalid("events_requested", "at most %d event types", maxEventsRequested)
		}
		for _, e := range c.EventsRequested {
			if e == "" || len(e) > maxFieldLen {
				return invalid("events_requested", "an event type is empty or longer than %d bytes", maxFieldLen)
			}
		}
		st.EventsRequested = slices.Clone(c.EventsRequested)
		st.EventsDelivered = nil
		for _, e := range Supported {
			if slices.Contains(c.EventsRequested, e) {
				st.EventsDelivered = append(st.EventsDelivered, e)
			}
		}
	}
	if replace || c.Description != "" {
		if len(c.Description) > maxFieldLen {
			return invalid("description", "longer than %d bytes", maxFieldLen)
		}
		st.Description = c.Description
	}
	if replace || len(c.Audience) > 0 {
		aud := slices.Clone([]string(c.Audience))
		if len(aud) == 0 {
			aud = []string{st.ID} // the receiver's to choose; by default the stream's own ID
		}
		for _, a := range aud {
			if a == "" || len(a) > maxFieldLen {
				return invalid("aud", "an audience is empty or longer than %d bytes", maxFieldLen)
			}
		}
		st.Audience = aud
	}
	if replace || in.SigningAlg != "" {
		switch in.SigningAlg {
		case "", AlgEdDSA:
			st.Algorithm = AlgEdDSA
		case AlgRS256:
			st.Algorithm = AlgRS256
		default:
			return invalid("signing_alg", "want %s or %s, not %.50q", AlgEdDSA, AlgRS256, in.SigningAlg)
		}
	}
	if replace || c.Delivery != nil {
		var d ssf.Delivery
		if c.Delivery != nil {
			d = *c.Delivery
		}
		if d.MaxInFlight < 0 || d.MaxInFlight > MaxInFlight {
			return invalid("delivery.portcullis_max_in_flight", "want 0 to %d, not %d", MaxInFlight, d.MaxInFlight)
		}
		st.MaxInFlight = 0
		switch d.Method {
		case "", ssf.DeliveryPoll: // poll unless the receiver asks for push
			if d.MaxInFlight > 1 {
				return invalid("delivery.portcullis_max_in_flight", "applies to push delivery only (a poll asks for maxEvents)")
			}
			st.DeliveryMethod = ssf.DeliveryPoll
			st.EndpointURL = strings.TrimSuffix(t.cfg.Issuer, "/") + "/ssf/poll/" + st.ID
			st.AuthorizationHeader = ""
		case ssf.DeliveryPush:
			u, err := url.Parse(d.EndpointURL)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(d.EndpointURL) > maxFieldLen {
				return invalid("delivery.endpoint_url", "push needs the receiver's absolute https URL, not %.100q", d.EndpointURL)
			}
			if u.Scheme == "http" && !t.cfg.InsecurePush && !loopback(u.Hostname()) {
				return invalid("delivery.endpoint_url", "%.100q: https required (http only on loopback, or with serve --insecure)", d.EndpointURL)
			}
			if len(d.AuthorizationHeader) > maxAuthHeader || strings.ContainsAny(d.AuthorizationHeader, "\r\n") {
				return invalid("delivery.authorization_header", "longer than %d bytes or not one line", maxAuthHeader)
			}
			st.DeliveryMethod, st.EndpointURL, st.AuthorizationHeader = ssf.DeliveryPush, d.EndpointURL, d.AuthorizationHeader
			st.MaxInFlight = d.MaxInFlight
		default:
			return invalid("delivery.method", "want %s (push) or %s (poll), not %.100q", ssf.DeliveryPush, ssf.DeliveryPoll, d.Method)
		}
	}
	return nil
}

// loopback reports whether host is this machine.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// owned reads a stream the caller may manage.
func owned(tx storage.ReadTx, c Caller, id string) (storage.SignalStream, error) {
	if id == "" {
		return storage.SignalStream{}, invalid("stream_id", "required")
	}
	st, err := tx.SignalStream(id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && !c.Admin && st.Owner != c.KeyID) {
		return storage.SignalStream{}, notFound(id)
	}
	return st, err
}

// audit is the audit record of a change to a stream.
func (t *Transmitter) audit(c Caller, action string, st storage.SignalStream, details map[string]string) storage.AuditRecord {
	now := t.now()
	return storage.AuditRecord{ID: authority.NewID("aud_", now), Time: now, Action: action,
		Actor: c.Actor.Name, ActorAddr: c.Actor.Addr, Channel: c.Actor.Channel,
		TargetID: st.ID, Details: details}
}

// updated emits the event that tells every replica to reconsider the stream.
func (t *Transmitter) updated(tx storage.Tx, kind storage.EventKind, id string) error {
	return tx.Emit(storage.Event{Kind: kind, Time: t.now(), Signal: &storage.SignalNote{StreamID: id}})
}

// CreateStream creates a stream owned by the caller's key. It delivers the
// events committed after it.
func (t *Transmitter) CreateStream(ctx context.Context, c Caller, in StreamInput) (ssf.StreamConfig, error) {
	now := t.now()
	st := storage.SignalStream{ID: authority.NewID("sst_", now), Owner: c.KeyID, OwnerName: c.KeyName,
		Status: StatusEnabled, CreateTime: now, UpdateTime: now}
	if err := t.configure(&st, in, true); err != nil {
		return ssf.StreamConfig{}, err
	}
	_, err := t.cfg.Store.Update(ctx, func(tx storage.Tx) error {
		n := 0
		for other, err := range tx.SignalStreams() {
			if err != nil {
				return err
			}
			if other.Owner == c.KeyID {
				n++
			}
		}
		if n >= MaxStreamsPerKey {
			return fmt.Errorf("%w: API key %q has %d streams, the most one may; delete one first", ErrTooManyStreams, c.KeyName, n)
		}
		st.Position = tx.Revision()
		if err := tx.PutSignalStream(st); err != nil {
			return err
		}
		if err := t.updated(tx, storage.EventSignalStreamUpdated, st.ID); err != nil {
			return err
		}
		return tx.AppendAudit(t.audit(c, "signal.stream.create", st, map[string]string{
			"delivery": st.DeliveryMethod, "endpoint_url": st.EndpointURL, "events": strings.Join(st.EventsDelivered, " ")}))
	})
	if err != nil {
		return ssf.StreamConfig{}, err
	}
	return t.wire(st), nil
}

// GetStream reads one of the caller's streams.
func (t *Transmitter) GetStream(ctx context.Context, c Caller, id string) (ssf.StreamConfig, error) {
	var st storage.SignalStream
	err := t.cfg.Store.View(ctx, func(tx storage.ReadTx) (err error) {
		st, err = owned(tx, c, id)
		return err
	})
	if err != nil {
		return ssf.StreamConfig{}, err
	}
	return t.wire(st), nil
}

// ListStreams lists the caller's streams (every stream for an admin key).
func (t *Transmitter) ListStreams(ctx context.Context, c Caller) ([]ssf.StreamConfig, error) {
	out := []ssf.StreamConfig{}
	err := t.cfg.Store.View(ctx, func(tx storage.ReadTx) error {
		out = out[:0]
		for st, err := range tx.SignalStreams() {
			if err != nil {
				return err
			}
			if c.Admin || st.Owner == c.KeyID {
				out = append(out, t.wire(st))
			}
		}
		return nil
	})
	return out, err
}

// UpdateStream changes a stream's receiver-supplied fields: those present
// in in (PATCH), or all of them (replace, PUT).
func (t *Transmitter) UpdateStream(ctx context.Context, c Caller, in StreamInput, replace bool) (ssf.StreamConfig, error) {
	var st storage.SignalStream
	action := "signal.stream.update"
	if replace {
		action = "signal.stream.replace"
	}
	_, err := t.cfg.Store.Update(ctx, func(tx storage.Tx) (err error) {
		if st, err = owned(tx, c, in.Config.StreamID); err != nil {
			return err
		}
		if err := t.configure(&st, in, replace); err != nil {
			return err
		}
		st.UpdateTime = t.now()
		if err := tx.PutSignalStream(st); err != nil {
			return err
		}
		if err := t.updated(tx, storage.EventSignalStreamUpdated, st.ID); err != nil {
			return err
		}
		return tx.AppendAudit(t.audit(c, action, st, map[string]string{
			"delivery": st.DeliveryMethod, "endpoint_url": st.EndpointURL, "events": strings.Join(st.EventsDelivered, " ")}))
	})
	if err != nil {
		return ssf.StreamConfig{}, err
	}
	return t.wire(st), nil
}

// DeleteStream deletes one of the caller's streams; its undelivered
// events are dropped.
func (t *Transmitter) DeleteStream(ctx context.Context, c Caller, id string) error {
	_, err := t.cfg.Store.Update(ctx, func(tx storage.Tx) error {
		st, err := owned(tx, c, id)
		if err != nil {
			return err
		}
		if err := tx.DeleteSignalStream(id); err != nil {
			return err
		}
		if err := t.updated(tx, storage.EventSignalStreamDeleted, id); err != nil {
			return err
		}
		return tx.AppendAudit(t.audit(c, "signal.stream.delete", st, nil))
	})
	return err
}

func statusOf(st storage.SignalStream) ssf.StreamStatus {
	return ssf.StreamStatus{StreamID: st.ID, Status: st.Status, Reason: st.StatusReason}
}

// Status reads one of the caller's streams' status.
func (t *Transmitter) Status(ctx context.Context, c Caller, id string) (ssf.StreamStatus, error) {
	var st storage.SignalStream
	err := t.cfg.Store.View(ctx, func(tx storage.ReadTx) (err error) {
		st, err = owned(tx, c, id)
		return err
	})
	return statusOf(st), err
}

// SetStatus enables, pauses or disables a stream (SSF 1.0 §8.1.2.2). A
// paused stream keeps its events and delivers them once enabled again; a
// disabled one drops them: leaving "disabled" starts from the current
// revision. Enabling clears an outage.
func (t *Transmitter) SetStatus(ctx context.Context, c Caller, in ssf.StreamStatus) (ssf.StreamStatus, error) {
	switch in.Status {
	case StatusEnabled, StatusPaused, StatusDisabled:
	default:
		return ssf.StreamStatus{}, invalid("status", "want %s, %s or %s, not %.50q", StatusEnabled, StatusPaused, StatusDisabled, in.Status)
	}
	if len(in.Reason) > maxFieldLen {
		return ssf.StreamStatus{}, invalid("reason", "longer than %d bytes", maxFieldLen)
	}
	// A stream paused because the log lost its events starts again from
	// the current revision: those events cannot be delivered.
	lost, err := t.lostPosition(ctx, c, in.StreamID)
	if err != nil {
		return ssf.StreamStatus{}, err
	}
	var st storage.SignalStream
	_, err = t.cfg.Store.Update(ctx, func(tx storage.Tx) (err error) {
		if st, err = owned(tx, c, in.StreamID); err != nil {
			return err
		}
		if (st.Status == StatusDisabled && in.Status != StatusDisabled) || (lost >= 0 && st.Position <= lost) {
			st.Position, st.Acked = tx.Revision(), nil
		}
		if in.Status == StatusEnabled {
			st.OutageSince, st.LastError = time.Time{}, ""
		}
		st.Status, st.StatusReason, st.UpdateTime = in.Status, in.Reason, t.now()
		if err := tx.PutSignalStream(st); err != nil {
			return err
		}
		if err := t.updated(tx, storage.EventSignalStreamUpdated, st.ID); err != nil {
			return err
		}
		return tx.AppendAudit(t.audit(c, "signal.stream.status", st, map[string]string{"status": st.Status, "reason": st.StatusReason}))
	})
	if err != nil {
		return ssf.StreamStatus{}, err
	}
	return statusOf(st), nil
}

// lostPosition returns the stream's Position when the event log no longer
// holds the revisions after it, else -1.
func (t *Transmitter) lostPosition(ctx context.Context, c Caller, id string) (int64, error) {
	var pos int64
	err := t.cfg.Store.View(ctx, func(tx storage.ReadTx) error {
		st, err := owned(tx, c, id)
		pos = st.Position
		return err
	})
	if err != nil {
		return -1, err
	}
	w, err := t.cfg.Store.Watch(ctx, pos)
	if errors.Is(err, storage.ErrCompacted) {
		return pos, nil
	} else if err != nil {
		return -1, err
	}
	w.Close()
	return -1, nil
}

// AddSubject adds a subject to a stream: once it has any, the stream
// delivers only the events about its subjects (SSF 1.0 §8.1.3).
func (t *Transmitter) AddSubject(ctx context.Context, c Caller, in ssf.SubjectRequest) error {
	return t.subject(ctx, c, in, true)
}

// RemoveSubject removes a subject from a stream; removing one it does not
// have is not an error.
func (t *Transmitter) RemoveSubject(ctx context.Context, c Caller, in ssf.SubjectRequest) error {
	return t.subject(ctx, c, in, false)
}

func (t *Transmitter) subject(ctx context.Context, c Caller, in ssf.SubjectRequest, add bool) error {
	if in.Subject == nil {
		return invalid("subject", "required")
	}
	if err := in.Subject.Validate(); err != nil {
		return invalid("subject", "%v", err)
	}
	key := in.Subject.Key()
	action := "signal.subject.remove"
	if add {
		action = "signal.subject.add"
	}
	_, err := t.cfg.Store.Update(ctx, func(tx storage.Tx) error {
		st, err := owned(tx, c, in.StreamID)
		if err != nil {
			return err
		}
		has := slices.Contains(st.Subjects, key)
		switch {
		case add && has, !add && !has:
			return nil
		case add:
			if len(st.Subjects) >= maxSubjects {
				return invalid("subject", "the stream has %d subjects, the most it may", maxSubjects)
			}
			st.Subjects = append(st.Subjects, key)
		default:
			st.Subjects = slices.DeleteFunc(st.Subjects, func(s string) bool { return s == key })
		}
		st.UpdateTime = t.now()
		if err := tx.PutSignalStream(st); err != nil {
			return err
		}
		if err := t.updated(tx, storage.EventSignalStreamUpdated, st.ID); err != nil {
			return err
		}
		return tx.AppendAudit(t.audit(c, action, st, map[string]string{"subject": key}))
	})
	return err
}

// Verify asks for a verification event on the stream (SSF 1.0 §8.1.4): it
// goes into the event log, and so reaches the receiver in order with the
// other events, by push or poll.
func (t *Transmitter) Verify(ctx context.Context, c Caller, in ssf.VerificationRequest) error {
	if len(in.State) > maxFieldLen {
		return invalid("state", "longer than %d bytes", maxFieldLen)
	}
	now := t.now()
	t.mu.Lock()
	last, ok := t.lastVerify[in.StreamID]
	t.mu.Unlock()
	if ok && now.Sub(last) < t.cfg.MinVerificationInterval {
		return ErrVerificationTooSoon
	}
	_, err := t.cfg.Store.Update(ctx, func(tx storage.Tx) error {
		if _, err := owned(tx, c, in.StreamID); err != nil {
			return err
		}
		return tx.Emit(storage.Event{Kind: storage.EventSignalVerification, Time: now,
			Signal: &storage.SignalNote{StreamID: in.StreamID, State: in.State}})
	})
	if err == nil {
		t.mu.Lock()
		t.lastVerify[in.StreamID] = now
		t.mu.Unlock()
	}
	return err
}

// StreamState is a stream's status and, for a push stream, whether this
// replica delivers it (for the metrics).
type StreamState struct {
	ssf.StreamStatus
	Push bool // a push stream
	// Pushing: this replica holds the stream's push lease (lease.go).
	Pushing bool
}

// Statuses returns every stream's state (for the metrics).
func (t *Transmitter) Statuses(ctx context.Context) ([]StreamState, error) {
	var out []StreamState
	now := t.now()
	err := t.cfg.Store.View(ctx, func(tx storage.ReadTx) error {
		out = out[:0]
		for st, err := range tx.SignalStreams() {
			if err != nil {
				return err
			}
			out = append(out, StreamState{StreamStatus: statusOf(st), Push: st.DeliveryMethod == ssf.DeliveryPush,
				Pushing: st.Pusher == t.cfg.Holder && now.Before(st.PushLeaseUntil)})
		}
		return nil
	})
	return out, err
}
