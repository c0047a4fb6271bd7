package txfake

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/ssf"
)

// Token is the bearer token the fake requires on its management and poll
// endpoints.
const Token = "fake-transmitter-token"

// Transmitter is the fake.
type Transmitter struct {
	URL string // its issuer, and the base of its endpoints
	srv *httptest.Server

	mu       sync.Mutex
	keys     map[string]ed25519.PrivateKey // published keys by kid
	kid      string                        // the signing key
	stream   *ssf.StreamConfig             // the stream created, nil before and after delete
	deleted  []string                      // stream IDs deleted
	queue    map[string]string             // poll: SETs not yet acknowledged, by jti
	acked    []string
	setErrs  map[string]ssf.SETErr
	polls    int
	jwksGets int
	changed  chan struct{} // closed and replaced on every change
	done     chan struct{} // closed when the test ends: waiting polls return
	seq      int
}

// Start starts a fake transmitter, closed at the test's end.
func Start(t testing.TB) *Transmitter {
	x := &Transmitter{keys: map[string]ed25519.PrivateKey{}, queue: map[string]string{},
		setErrs: map[string]ssf.SETErr{}, changed: make(chan struct{}), done: make(chan struct{})}
	x.RotateKey()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/ssf-configuration", x.config)
	mux.HandleFunc("GET /jwks", x.jwks)
	mux.HandleFunc("POST /streams", x.createStream)
	mux.HandleFunc("DELETE /streams", x.deleteStream)
	mux.HandleFunc("POST /poll", x.poll)
	x.srv = httptest.NewServer(mux)
	x.URL = x.srv.URL
	t.Cleanup(func() {
		close(x.done) // a receiver's long poll ends, so that Close does not wait for it
		x.srv.Close()
	})
	return x
}

// RotateKey makes a new signing key, published beside the old ones, and
// returns its kid.
func (x *Transmitter) RotateKey() string {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.seq++
	x.kid = fmt.Sprintf("k%d", x.seq)
	x.keys[x.kid] = priv
	return x.kid
}

func (x *Transmitter) notify() { // x.mu held
	close(x.changed)
	x.changed = make(chan struct{})
}

func (x *Transmitter) authorized(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("Authorization") != "Bearer "+Token {
		http.Error(w, "bad token", http.StatusUnauthorized)
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (x *Transmitter) config(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, ssf.TransmitterConfig{
		SpecVersion: "1_0", Issuer: x.URL, JWKSURI: x.URL + "/jwks", ConfigurationEndpoint: x.URL + "/streams",
		DeliveryMethodsSupported: []string{ssf.DeliveryPush, ssf.DeliveryPoll},
	})
}

func (x *Transmitter) jwks(w http.ResponseWriter, _ *http.Request) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.jwksGets++
	var keys []map[string]string
	for kid, k := range x.keys {
		keys = append(keys, map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "use": "sig",
			"x": base64.RawURLEncoding.EncodeToString(k.Public().(ed25519.PublicKey))})
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

func (x *Transmitter) createStream(w http.ResponseWriter, r *http.Request) {
	if !x.authorized(w, r) {
		return
	}
	var c ssf.StreamConfig
	if err := json.NewDecoder(r.Body).Decode(&c); err != nil || c.Delivery == nil {
		http.Error(w, "bad stream", http.StatusBadRequest)
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.seq++
	c.StreamID = fmt.Sprintf("stream-%d", x.seq)
	c.Issuer = x.URL
	c.EventsDelivered = c.EventsRequested
	if len(c.Audience) == 0 {
		c.Audience = ssf.Audience{"aud-" + c.StreamID} // as internal/transmitter: the receiver's to choose, else the stream's
	}
	if c.Delivery.Method == ssf.DeliveryPoll {
		c.Delivery.EndpointURL = x.URL + "/poll"
	}
	x.stream = &c
	x.notify()
	writeJSON(w, http.StatusCreated, c)
}

func (x *Transmitter) deleteStream(w http.ResponseWriter, r *http.Request) {
	if !x.authorized(w, r) {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.stream == nil || r.URL.Query().Get("stream_id") != x.stream.StreamID {
		http.Error(w, "no such stream", http.StatusNotFound)
		return
	}
	x.deleted = append(x.deleted, x.stream.StreamID)
	x.stream = nil
	x.notify()
	w.WriteHeader(http.StatusNoContent)
}

// poll answers with the SETs not acknowledged yet, waiting for one when
// there is none (returnImmediately false) until the request ends.
func (x *Transmitter) poll(w http.ResponseWriter, r *http.Request) {
	if !x.authorized(w, r) {
		return
	}
	var req ssf.PollRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, "bad poll", http.StatusBadRequest)
		return
	}
	x.mu.Lock()
	x.polls++
	for _, jti := range req.Ack {
		delete(x.queue, jti)
		x.acked = append(x.acked, jti)
	}
	for jti, e := range req.SetErrs {
		delete(x.queue, jti)
		x.setErrs[jti] = e
	}
	x.notify()
	for len(x.queue) == 0 && !req.ReturnImmediately {
		ch := x.changed
		x.mu.Unlock()
		select {
		case <-ch:
		case <-r.Context().Done():
			return
		case <-x.done:
			http.Error(w, "closing", http.StatusServiceUnavailable)
			return
		}
		x.mu.Lock()
	}
	sets := make(map[string]string, len(x.queue))
	for jti, s := range x.queue {
		sets[jti] = s
	}
	x.mu.Unlock()
	writeJSON(w, http.StatusOK, ssf.PollResponse{Sets: sets})
}

// Stream returns the stream the receiver created (nil before, and after
// it deleted it).
func (x *Transmitter) Stream() *ssf.StreamConfig {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.stream == nil {
		return nil
	}
	c := *x.stream
	return &c
}

// JWKSFetches returns how many times the JWKS was fetched.
func (x *Transmitter) JWKSFetches() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.jwksGets
}

// Deleted returns the IDs of the streams the receiver deleted.
func (x *Transmitter) Deleted() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.deleted)
}

// SET returns a SET of the fake for aud, with one event, signed with the
// current key.
func (x *Transmitter) SET(aud, jti string, iat time.Time, sub *ssf.Subject, event string, payload any) ssf.SET {
	raw, _ := json.Marshal(payload)
	return ssf.SET{Issuer: x.URL, Audience: []string{aud}, IssuedAt: iat, JTI: jti, SubjectID: sub,
		Events: map[string]json.RawMessage{event: raw}}
}

// Sign signs set with the current key.
func (x *Transmitter) Sign(set ssf.SET) string {
	x.mu.Lock()
	kid, key := x.kid, x.keys[x.kid]
	x.mu.Unlock()
	tok, err := ssf.Sign(set, kid, ssf.AlgEdDSA, key)
	if err != nil {
		panic(err)
	}
	return tok
}

// Push delivers a signed SET to the stream's push endpoint with its
// authorization header (or auth, when not empty) and returns the status
// and the decoded error body.
func (x *Transmitter) Push(ctx context.Context, token, auth string) (int, map[string]any, error) {
	s := x.Stream()
	if s == nil || s.Delivery == nil {
		return 0, nil, fmt.Errorf("no push stream")
	}
	if auth == "" {
		auth = s.Delivery.AuthorizationHeader
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Delivery.EndpointURL, bytes.NewReader([]byte(token)))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", ssf.ContentType)
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body, nil
}

// Enqueue queues a signed SET for the poll endpoint.
func (x *Transmitter) Enqueue(jti, token string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.queue[jti] = token
	x.notify()
}

// WaitPolled waits until cond holds of the acknowledged jtis and the
// setErrs the receiver sent, or ctx ends.
func (x *Transmitter) WaitPolled(ctx context.Context, cond func(acked []string, setErrs map[string]ssf.SETErr) bool) error {
	for {
		x.mu.Lock()
		ok := cond(slices.Clone(x.acked), x.setErrs)
		ch := x.changed
		x.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
