package receiver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/ident"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/ssf"
)

// Bounds of a transmitter's settings.
const (
	maxURLLen         = 512
	maxAudienceLen    = 512
	maxBearerLen      = 4096
	maxDescriptionLen = 1024
	wellKnownSSF      = "/.well-known/ssf-configuration"
)

// Settings are what an operator chooses when adding a transmitter.
type Settings struct {
	ConfigURL   string // its ssf-configuration URL, or its issuer URL
	Audience    string
	Delivery    string // "push" (default) or "poll"
	BearerToken string
	TenantID    string
	BanDuration time.Duration // 0 = permanent
	Description string
}

func invalid(field, format string, args ...any) error {
	return &authority.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

func checkText(field, v string, max int) error {
	if len(v) > max {
		return invalid(field, "is longer than %d bytes", max)
	}
	if err := ident.CheckText(v); err != nil {
		return invalid(field, "%v", err)
	}
	return nil
}

// check validates s, fills in the defaults and returns the configuration
// URL with the issuer it implies.
func (r *Receiver) check(s *Settings) (issuer string, err error) {
	if s.ConfigURL == "" {
		return "", invalid("config_url", "is required")
	}
	if err := checkText("config_url", s.ConfigURL, maxURLLen); err != nil {
		return "", err
	}
	u, err := url.Parse(s.ConfigURL)
	if err != nil || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", invalid("config_url", "%.128q is not a URL without query, fragment or user info", s.ConfigURL)
	}
	// SSF 1.0 §7.2: the configuration is at the issuer's host under
	// /.well-known/ssf-configuration, followed by the issuer's path.
	switch {
	case strings.HasPrefix(u.Path, wellKnownSSF):
		issuer = u.Scheme + "://" + u.Host + strings.TrimPrefix(u.Path, wellKnownSSF)
	default:
		issuer = strings.TrimSuffix(s.ConfigURL, "/")
		s.ConfigURL = u.Scheme + "://" + u.Host + wellKnownSSF + strings.TrimSuffix(u.Path, "/")
	}
	if err := r.auth.CheckFetchURL(s.ConfigURL); err != nil {
		return "", invalid("config_url", "%v", err)
	}
	if err := checkText("audience", s.Audience, maxAudienceLen); err != nil {
		return "", err
	}
	switch s.Delivery {
	case "", "push":
		s.Delivery = ssf.DeliveryPush
		if pu, err := url.Parse(r.cfg.PublicURL); err != nil || pu.Host == "" || (pu.Scheme != "https" && pu.Scheme != "http") {
			return "", invalid("delivery", "push needs this authority's public URL (serve --public-url, or --http-listen), not %.128q", r.cfg.PublicURL)
		}
	case "poll":
		s.Delivery = ssf.DeliveryPoll
	default:
		return "", invalid("delivery", `%.32q: choose "push" or "poll"`, s.Delivery)
	}
	if err := checkText("bearer_token", s.BearerToken, maxBearerLen); err != nil {
		return "", err
	}
	if s.TenantID == "" {
		return "", invalid("tenant_id", `is required: the tenant of the bans its signals make ("*" for every tenant)`)
	}
	if err := checkText("tenant_id", s.TenantID, 128); err != nil {
		return "", err
	}
	if s.BanDuration < 0 {
		return "", invalid("ban_duration", "must not be negative")
	}
	return issuer, checkText("description", s.Description, maxDescriptionLen)
}

// Add adds a transmitter: it fetches its configuration and JWKS, creates
// our stream at it, then stores the record, audited
// ("signal.transmitter.create"). Nothing is stored when a step fails; a
// stream created at the transmitter before a failed store is deleted
// again (best effort).
func (r *Receiver) Add(ctx context.Context, by authority.Actor, s Settings) (storage.SignalTransmitter, error) {
	issuer, err := r.check(&s)
	if err != nil {
		return storage.SignalTransmitter{}, err
	}
	var conf ssf.TransmitterConfig
	if _, err := r.auth.GetJSON(ctx, s.ConfigURL, &conf); err != nil {
		return storage.SignalTransmitter{}, invalid("config_url", "fetching the transmitter's configuration failed: %v", err)
	}
	if conf.Issuer != issuer {
		return storage.SignalTransmitter{}, invalid("config_url", "the configuration names issuer %.200q, not %q", conf.Issuer, issuer)
	}
	if conf.ConfigurationEndpoint == "" {
		return storage.SignalTransmitter{}, invalid("config_url", "the transmitter has no configuration_endpoint: streams cannot be created")
	}
	if err := r.auth.CheckFetchURL(conf.ConfigurationEndpoint); err != nil {
		return storage.SignalTransmitter{}, invalid("config_url", "configuration_endpoint: %v", err)
	}
	keys, err := r.fetchKeys(ctx, conf.JWKSURI)
	if err != nil {
		return storage.SignalTransmitter{}, invalid("config_url", "fetching the transmitter's keys failed: %v", err)
	}
	now := r.now()
	rec := storage.SignalTransmitter{
		ID: "stx_" + randomHex(12), ConfigURL: s.ConfigURL, Issuer: conf.Issuer, JWKSURI: conf.JWKSURI,
		Audience: s.Audience, DeliveryMethod: s.Delivery, ConfigurationEndpoint: conf.ConfigurationEndpoint,
		BearerToken: s.BearerToken, TenantID: s.TenantID, BanDuration: s.BanDuration, Description: s.Description,
		Keys: keys, CreateTime: now, UpdateTime: now, CreatedBy: by.Name, LastSuccessTime: now,
	}
	delivery := ssf.Delivery{Method: s.Delivery}
	if s.Delivery == ssf.DeliveryPush {
		secret := "Bearer " + randomToken()
		sum := sha256.Sum256([]byte(secret))
		rec.PushSecretHash = sum[:]
		delivery.EndpointURL = strings.TrimSuffix(r.cfg.PublicURL, "/") + "/ssf/receive/" + rec.ID
		delivery.AuthorizationHeader = secret
		if r.cfg.PushInFlight > 1 {
			// A Portcullis transmitter then keeps that many SETs in
			// flight, chained by portcullis_prev_jti; others ignore the
			// member and push one at a time.
			delivery.MaxInFlight = r.cfg.PushInFlight
		}
	}
	stream, err := r.createStream(ctx, rec, delivery)
	if err != nil {
		return storage.SignalTransmitter{}, invalid("config_url", "creating our stream at the transmitter failed: %v", err)
	}
	rec.StreamID = stream.StreamID
	// aud is the transmitter's to set (SSF 1.0 §8.1.1): asked for when
	// given, adopted when not, and the add refused when the stream's aud
	// is not the one asked for (every SET would be refused).
	switch {
	case s.Audience == "" && len(stream.Audience) == 0:
		r.deleteStream(rec)
		return storage.SignalTransmitter{}, invalid("audience", "the transmitter's stream names no aud: give the audience its SETs carry for this authority")
	case s.Audience == "":
		rec.Audience = stream.Audience[0]
	case len(stream.Audience) > 0 && !slices.Contains(stream.Audience, s.Audience):
		r.deleteStream(rec)
		return storage.SignalTransmitter{}, invalid("audience", "the transmitter's stream has aud %.200q, not %.200q", []string(stream.Audience), s.Audience)
	}
	if s.Delivery == ssf.DeliveryPoll {
		if stream.Delivery == nil || stream.Delivery.EndpointURL == "" {
			r.deleteStream(rec)
			return storage.SignalTransmitter{}, invalid("delivery", "the transmitter's stream names no poll endpoint_url")
		}
		if err := r.auth.CheckFetchURL(stream.Delivery.EndpointURL); err != nil {
			r.deleteStream(rec)
			return storage.SignalTransmitter{}, invalid("delivery", "the poll endpoint_url: %v", err)
		}
		rec.PollURL = stream.Delivery.EndpointURL
	}
	_, err = r.auth.Update(ctx, func(tx storage.Tx) error {
		if err := tx.PutSignalTransmitter(rec); err != nil {
			return err
		}
		if err := tx.Emit(storage.Event{Kind: storage.EventSignalTransmitterUpdated, Time: now,
			Signal: &storage.SignalNote{TransmitterID: rec.ID}}); err != nil {
			return err
		}
		return tx.AppendAudit(transmitterAudit("signal.transmitter.create", by, rec, now))
	})
	if err != nil {
		r.deleteStream(rec)
		return storage.SignalTransmitter{}, err
	}
	r.log.Info("signal transmitter added", "transmitter", rec.ID, "issuer", rec.Issuer, "stream_id", rec.StreamID, "actor", by.Name)
	r.wake()
	return rec, nil
}

func transmitterAudit(action string, by authority.Actor, t storage.SignalTransmitter, now time.Time) storage.AuditRecord {
	return storage.AuditRecord{
		ID: authority.NewID("aud_", now), Time: now, Action: action, Actor: by.Name, ActorAddr: by.Addr, Channel: by.Channel,
		TargetID: t.ID, Details: map[string]string{"issuer": t.Issuer, "stream_id": t.StreamID, "delivery": t.DeliveryMethod},
	}
}

// checkID refuses an ID no transmitter can have, before the store sees it.
func checkID(id string) error {
	if id == "" {
		return invalid("transmitter_id", "is required")
	}
	if len(id) > 64 || strings.ContainsAny(id, "\x00/") {
		return invalid("transmitter_id", "%.64q is not a transmitter ID", id)
	}
	return nil
}

// Get returns one transmitter.
func (r *Receiver) Get(ctx context.Context, id string) (storage.SignalTransmitter, error) {
	var out storage.SignalTransmitter
	if err := checkID(id); err != nil {
		return out, err
	}
	err := r.auth.View(ctx, func(tx storage.ReadTx) error {
		var err error
		out, err = tx.SignalTransmitter(id)
		return err
	})
	if errors.Is(err, storage.ErrNotFound) {
		return out, fmt.Errorf("%w: no signal transmitter %.64q", authority.ErrNotFound, id)
	}
	return out, err
}

// List returns every transmitter, by ID.
func (r *Receiver) List(ctx context.Context) ([]storage.SignalTransmitter, error) {
	var out []storage.SignalTransmitter
	err := r.auth.View(ctx, func(tx storage.ReadTx) error {
		for t, err := range tx.SignalTransmitters() {
			if err != nil {
				return err
			}
			out = append(out, t)
		}
		return nil
	})
	return out, err
}

// Delete removes a transmitter, audited ("signal.transmitter.delete"): its
// SETs are refused from then on. Then it deletes our stream at the
// transmitter, best effort (a failure is logged).
func (r *Receiver) Delete(ctx context.Context, by authority.Actor, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	now := r.now()
	var rec storage.SignalTransmitter
	_, err := r.auth.Update(ctx, func(tx storage.Tx) error {
		var err error
		if rec, err = tx.SignalTransmitter(id); err != nil {
			return err
		}
		if err := tx.DeleteSignalTransmitter(id); err != nil {
			return err
		}
		if err := tx.Emit(storage.Event{Kind: storage.EventSignalTransmitterDeleted, Time: now,
			Signal: &storage.SignalNote{TransmitterID: id}}); err != nil {
			return err
		}
		return tx.AppendAudit(transmitterAudit("signal.transmitter.delete", by, rec, now))
	})
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: no signal transmitter %.64q", authority.ErrNotFound, id)
	} else if err != nil {
		return err
	}
	r.log.Info("signal transmitter deleted", "transmitter", id, "actor", by.Name)
	r.mu.Lock()
	delete(r.sequencers, id) // a run under way ends with its own
	delete(r.refetched, id)
	r.mu.Unlock()
	r.wake()
	r.deleteStream(rec)
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// randomToken is a 256-bit secret.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
