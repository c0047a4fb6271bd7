package receiver

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/ssf"
)

// Calls to a transmitter's endpoints.
const (
	callTimeout = 30 * time.Second
	maxBody     = 4 << 20 // a poll response with maxEvents SETs
)

// fetchKeys fetches a JWKS and keeps its usable keys (ssf.ParseJWKS: RSA
// >= 2048, P-256, Ed25519, with a kid).
func (r *Receiver) fetchKeys(ctx context.Context, jwksURI string) ([]storage.IssuerKey, error) {
	if jwksURI == "" {
		return nil, fmt.Errorf("the configuration has no jwks_uri")
	}
	var raw json.RawMessage
	if _, err := r.auth.GetJSON(ctx, jwksURI, &raw); err != nil {
		return nil, err
	}
	jwks, err := ssf.ParseJWKS(raw)
	if err != nil {
		return nil, err
	}
	var out []storage.IssuerKey
	for _, k := range jwks {
		der, err := x509.MarshalPKIXPublicKey(k.Key)
		if err != nil {
			continue
		}
		out = append(out, storage.IssuerKey{ID: k.KeyID, Algorithms: k.Algorithms(), PublicKey: der})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the JWKS has no usable key")
	}
	return out, nil
}

// call sends a JSON request to a transmitter endpoint with our bearer
// token and decodes a JSON answer into out (when not nil).
func (r *Receiver) call(ctx context.Context, t storage.SignalTransmitter, method, target string, in, out any, timeout time.Duration) error {
	if err := r.auth.CheckFetchURL(target); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if t.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+t.BearerToken)
	}
	hc := *r.auth.FetchHTTP()
	hc.Timeout = 0 // the context bounds the call (a poll waits for events)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, target, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %.200s", method, target, resp.Status, b)
	}
	if len(b) > maxBody {
		return fmt.Errorf("%s %s: answer larger than %d bytes", method, target, maxBody)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, target, err)
	}
	return nil
}

// createStream creates our stream at the transmitter (SSF 1.0 §8.1.1.1).
func (r *Receiver) createStream(ctx context.Context, t storage.SignalTransmitter, d ssf.Delivery) (ssf.StreamConfig, error) {
	req := ssf.StreamConfig{EventsRequested: EventsApplied, Delivery: &d, Description: t.Description}
	if t.Audience != "" {
		req.Audience = ssf.Audience{t.Audience}
	}
	var out ssf.StreamConfig
	if err := r.call(ctx, t, http.MethodPost, t.ConfigurationEndpoint, req, &out, callTimeout); err != nil {
		return out, err
	}
	if out.StreamID == "" {
		return out, fmt.Errorf("the transmitter's answer names no stream_id")
	}
	return out, nil
}

// deleteStream deletes our stream at the transmitter, best effort: the
// transmitter's SETs are refused here anyway.
func (r *Receiver) deleteStream(t storage.SignalTransmitter) {
	if t.StreamID == "" {
		return
	}
	target := t.ConfigurationEndpoint + "?stream_id=" + url.QueryEscape(t.StreamID)
	if err := r.call(context.Background(), t, http.MethodDelete, target, nil, nil, callTimeout); err != nil {
		r.log.Warn("deleting our stream at a signal transmitter failed; it may go on delivering (refused here)",
			"transmitter", t.ID, "stream_id", t.StreamID, "error", err)
	}
}

// refreshKeys refetches a transmitter's JWKS after a SET named a kid it
// does not have, at most once a minute per transmitter, and stores the
// keys (no event: only the receiver reads them). It reports whether the
// keys were refetched.
func (r *Receiver) refreshKeys(ctx context.Context, t *storage.SignalTransmitter) bool {
	now := r.now()
	r.mu.Lock()
	last, ok := r.refetched[t.ID]
	if ok && now.Sub(last) < time.Minute {
		r.mu.Unlock()
		return false
	}
	r.refetched[t.ID] = now
	r.mu.Unlock()
	keys, ferr := r.fetchKeys(ctx, t.JWKSURI)
	_, err := r.auth.Update(ctx, func(tx storage.Tx) error {
		cur, err := tx.SignalTransmitter(t.ID)
		if err != nil {
			return err
		}
		if ferr != nil {
			cur.LastError, cur.LastErrorTime = truncate(ferr.Error()), now
		} else {
			cur.Keys, cur.UpdateTime = keys, now
			cur.LastSuccessTime, cur.LastError, cur.LastErrorTime = now, "", time.Time{}
		}
		*t = cur
		return tx.PutSignalTransmitter(cur)
	})
	if ferr != nil || err != nil {
		r.log.Warn("refetching a signal transmitter's keys failed", "transmitter", t.ID, "error", cmpErr(ferr, err))
		return false
	}
	return true
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func truncate(s string) string {
	if len(s) > 512 {
		return s[:512]
	}
	return s
}
