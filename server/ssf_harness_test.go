package server_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/transmitter"
	"github.com/portcullis-dev/portcullis/server"
	"github.com/portcullis-dev/portcullis/ssf"
)

// testIssuer is the transmitter's public URL in these tests: the SETs'
// iss, whatever address the HTTP server listens on (it changes when a
// test restarts the authority).
const testIssuer = "https://portcullis.test"

// ssfEnv is env plus the Shared Signals transmitter over the same store,
// served over real HTTP with the server's handler.
type ssfEnv struct {
	*env
	tx   *transmitter.Transmitter
	http *httptest.Server
	stop func() // stops Run (idempotent); it has stopped when stop returns
}

// newSSFEnv starts an authority, its HTTP handler with the transmitter and,
// unless noRun, the transmitter's Run. cfg's Store, Authority, Issuer and
// Clock are filled in.
func newSSFEnv(t testing.TB, o envOptions, cfg transmitter.Config, noRun bool) *ssfEnv {
	t.Helper()
	e := &ssfEnv{env: newEnv(t, o)}
	cfg.Store, cfg.Authority, cfg.Issuer, cfg.Clock = e.store, e.auth, testIssuer, e.clock.Now
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	cfg.MinBackoff = cmpOr(cfg.MinBackoff, time.Millisecond)
	cfg.MaxBackoff = cmpOr(cfg.MaxBackoff, 20*time.Millisecond)
	e.tx = transmitter.New(cfg)
	e.http = httptest.NewServer(e.srv.HTTPHandler(server.WithTransmitter(e.tx)))
	e.stop = func() {}
	t.Cleanup(func() { e.stop(); e.http.Close() }) // before the store's cleanup closes it
	if !noRun {
		e.run()
	}
	return e
}

func cmpOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// run starts the transmitter's Run.
func (e *ssfEnv) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.tx.Run(ctx) }()
	var once sync.Once
	e.stop = func() { once.Do(func() { cancel(); <-done }) }
}

// shutdown stops everything and closes the store, so that another ssfEnv
// can open the file.
func (e *ssfEnv) shutdown() {
	e.stop()
	e.http.Close()
	e.close()
}

// call sends a management request with the API key (none when key is "")
// and returns the status code and body.
func (e *ssfEnv) call(t testing.TB, method, path, key string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.http.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// must calls and fails the test unless the status is want; it decodes the
// body into out when given.
func (e *ssfEnv) must(t testing.TB, want int, method, path, key string, body, out any) {
	t.Helper()
	code, b := e.call(t, method, path, key, body)
	if code != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, code, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// createStream creates a stream with key and returns it.
func (e *ssfEnv) createStream(t testing.TB, key string, body map[string]any) ssf.StreamConfig {
	t.Helper()
	var out ssf.StreamConfig
	e.must(t, http.StatusCreated, "POST", "/ssf/streams", key, body, &out)
	return out
}

// pushStream creates a push stream to r requesting every supported event.
func (e *ssfEnv) pushStream(t testing.TB, key string, r *receiver, extra map[string]any) ssf.StreamConfig {
	t.Helper()
	body := map[string]any{
		"events_requested": transmitter.Supported,
		"delivery":         map[string]any{"method": ssf.DeliveryPush, "endpoint_url": r.srv.URL + "/events", "authorization_header": r.auth},
	}
	for k, v := range extra {
		body[k] = v
	}
	st := e.createStream(t, key, body)
	r.mu.Lock()
	r.audience = st.StreamID
	r.mu.Unlock()
	return st
}

// stream reads a stream record straight from the store.
func (e *ssfEnv) stream(t testing.TB, id string) storage.SignalStream {
	t.Helper()
	var st storage.SignalStream
	if err := e.store.View(context.Background(), func(tx storage.ReadTx) (err error) {
		st, err = tx.SignalStream(id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return st
}

// awaitStream waits until the stream record satisfies ok, following the
// store's event log (every status change is an event).
func (e *ssfEnv) awaitStream(t testing.TB, id string, ok func(storage.SignalStream) bool) storage.SignalStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	var rev int64
	_ = e.store.View(ctx, func(tx storage.ReadTx) error { rev = tx.Revision(); return nil })
	w, err := e.store.Watch(ctx, rev)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for {
		if st := e.stream(t, id); ok(st) {
			return st
		}
		if _, err := w.Next(ctx); err != nil {
			t.Fatalf("stream %s: the awaited state never came: %v; it is %+v", id, err, e.stream(t, id))
		}
	}
}

// actor is who makes the changes in these tests.
var actor = authority.Actor{Name: "ops", Channel: authority.ChannelGRPC}

// receiver is an SSF push receiver: it verifies every SET with ssf.Verify
// against the JWKS it fetched from the authority, and records them.
type receiver struct {
	t    testing.TB
	srv  *httptest.Server
	auth string // the Authorization header it requires

	mu      sync.Mutex
	jwksURL string
	keys    map[string]ssf.JWK
	sets    []ssf.SET
	raws    []string
	posts   int
	changed chan struct{}
	// answer, when set, chooses the status of the nth POST (from 1); 202
	// otherwise.
	answer func(n int) int
	// audience the SETs must carry: the stream's ID (pushStream sets it).
	audience string
	// windowed: the stream asked for several SETs in flight, so they may
	// name a predecessor; a one-at-a-time stream's never do.
	windowed bool
}

func newReceiver(t testing.TB, jwksURL string) *receiver {
	r := &receiver{t: t, auth: "Bearer receiver-secret", jwksURL: jwksURL, keys: map[string]ssf.JWK{}, changed: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

// key finds a kid in the JWKS, fetching it again when it is unknown.
func (r *receiver) key(kid string) (crypto.PublicKey, []string, bool) {
	r.mu.Lock()
	k, ok := r.keys[kid]
	url := r.jwksURL
	r.mu.Unlock()
	if !ok {
		resp, err := http.Get(url)
		if err != nil {
			r.t.Errorf("fetching the JWKS: %v", err)
			return nil, nil, false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		jwks, err := ssf.ParseJWKS(body)
		if err != nil {
			r.t.Errorf("parsing the JWKS: %v: %s", err, body)
			return nil, nil, false
		}
		r.mu.Lock()
		for _, j := range jwks {
			r.keys[j.KeyID] = j
		}
		k, ok = r.keys[kid]
		r.mu.Unlock()
	}
	if !ok {
		return nil, nil, false
	}
	return k.Key, k.Algorithms(), true
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.posts++
	n, answer, aud := r.posts, r.answer, r.audience
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	if answer != nil {
		if code := answer(n); code != http.StatusAccepted {
			if code == http.StatusBadRequest { // RFC 8935 §2.3
				writeJSON(w, code, ssf.PushError{Err: "invalid_request", Description: "refused by the test"})
				return
			}
			w.WriteHeader(code)
			return
		}
	}
	if got := req.Header.Get("Authorization"); got != r.auth {
		r.t.Errorf("push with Authorization %q, want %q", got, r.auth)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if ct := req.Header.Get("Content-Type"); ct != ssf.ContentType {
		r.t.Errorf("push with Content-Type %q", ct)
	}
	body, _ := io.ReadAll(req.Body)
	set, err := ssf.Verify(string(body), ssf.VerifyOptions{Issuer: testIssuer, Audience: aud, Key: r.key,
		Now: time.Now(), MaxAge: 100 * 365 * 24 * time.Hour, MaxSkew: 100 * 365 * 24 * time.Hour})
	if err != nil {
		r.t.Errorf("a pushed SET does not verify: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	if set.PrevJTI != "" && !r.windowed {
		r.t.Errorf("a SET of a one-at-a-time stream names a predecessor (portcullis_prev_jti %q)", set.PrevJTI)
	}
	r.sets = append(r.sets, set)
	r.raws = append(r.raws, string(body))
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// await waits until the SETs received satisfy ok and returns them.
func (r *receiver) await(t testing.TB, what string, ok func([]ssf.SET) bool) []ssf.SET {
	t.Helper()
	guard := time.After(hangGuard)
	for {
		r.mu.Lock()
		sets, ch := slices.Clone(r.sets), r.changed
		r.mu.Unlock()
		if ok(sets) {
			return sets
		}
		select {
		case <-ch:
		case <-guard:
			t.Fatalf("receiver: %s never came; got %d SETs: %s", what, len(sets), describe(sets))
		}
	}
}

// awaitPosts waits until the receiver was sent n POSTs, whatever it
// answered.
func (r *receiver) awaitPosts(t testing.TB, n int) {
	t.Helper()
	guard := time.After(hangGuard)
	for {
		r.mu.Lock()
		posts, ch := r.posts, r.changed
		r.mu.Unlock()
		if posts >= n {
			return
		}
		select {
		case <-ch:
		case <-guard:
			t.Fatalf("receiver: %d POSTs never came (got %d)", n, posts)
		}
	}
}

// awaitN waits for n SETs.
func (r *receiver) awaitN(t testing.TB, n int) []ssf.SET {
	t.Helper()
	guard := time.After(hangGuard)
	for {
		r.mu.Lock()
		got, ch := len(r.sets), r.changed // no copy per wake: the benchmark waits for thousands
		if got >= n {
			sets := slices.Clone(r.sets)
			r.mu.Unlock()
			return sets
		}
		r.mu.Unlock()
		select {
		case <-ch:
		case <-guard:
			t.Fatalf("receiver: %d SETs never came; got %d: %s", n, got, describe(r.snapshot()))
		}
	}
}

func (r *receiver) snapshot() []ssf.SET {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sets)
}

// describe lists SETs by jti and event type, for failure messages.
func describe(sets []ssf.SET) string {
	var b strings.Builder
	for _, s := range sets {
		for typ := range s.Events {
			b.WriteString("\n  " + s.JTI + " " + typ[strings.LastIndex(typ, "/")+1:])
		}
	}
	return b.String()
}

// eventOf returns a SET's only event type and payload.
func eventOf(t testing.TB, s ssf.SET) (string, map[string]any) {
	t.Helper()
	if len(s.Events) != 1 {
		t.Fatalf("SET %s has %d events, want 1", s.JTI, len(s.Events))
	}
	for typ, raw := range s.Events {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		return typ, m
	}
	panic("unreachable")
}

// subjectJSON is a subject as canonical JSON, to compare.
func subjectJSON(t testing.TB, s *ssf.Subject) string {
	t.Helper()
	if s == nil {
		return "null"
	}
	return s.Key()
}
