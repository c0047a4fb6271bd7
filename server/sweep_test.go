package server_test

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/server"
)

// sweepFixture is a store with sessions in every state Sweep must tell
// apart, created over 30 days of the test clock.
type sweepFixture struct {
	expired       []string   // ended more than the retention ago
	expiredTokens [][]string // their refresh tokens, every generation
	recent        string     // ended, within the retention
	recentToken   string
	live          string
	liveToken     string
	revoked       string // revoked, not yet ended
	revokedTokens []string
	fresh         string // revoked just before the sweep: access token alive
}

const sweepRetention = time.Hour

func newSweepFixture(t *testing.T, e *env) sweepFixture {
	t.Helper()
	var f sweepFixture
	refresh := func(tok string) string {
		t.Helper()
		r, err := e.sessions.RefreshSession(context.Background(), &pb.RefreshSessionRequest{RefreshToken: tok})
		if err != nil {
			t.Fatalf("RefreshSession: %v", err)
		}
		return r.GetRefreshToken()
	}
	revoke := func(id string) {
		t.Helper()
		if _, err := e.sessions.RevokeSession(e.admin(), &pb.RevokeSessionRequest{SessionId: id, Reason: "test"}); err != nil {
			t.Fatalf("RevokeSession: %v", err)
		}
	}
	// Day 0: two sessions that will be swept, with superseded tokens; one
	// of them revoked.
	a := e.login(&pb.CreateSessionRequest{UserId: "alice", DeviceId: "d1"})
	a1 := refresh(a.GetRefreshToken())
	a2 := refresh(a1)
	b := e.login(&pb.CreateSessionRequest{UserId: "bob"})
	b1 := refresh(b.GetRefreshToken())
	revoke(b.GetSession().GetSessionId())
	f.expired = []string{a.GetSession().GetSessionId(), b.GetSession().GetSessionId()}
	f.expiredTokens = [][]string{{a.GetRefreshToken(), a1, a2}, {b.GetRefreshToken(), b1}}

	// Half an hour later: one that will have ended less than the
	// retention before the sweep.
	e.clock.Advance(30 * time.Minute)
	g := e.login(&pb.CreateSessionRequest{UserId: "gina"})
	f.recent, f.recentToken = g.GetSession().GetSessionId(), g.GetRefreshToken()

	// Day 20: a live session and a revoked one, both ending on day 50.
	e.clock.Advance(20 * 24 * time.Hour)
	c := e.login(&pb.CreateSessionRequest{UserId: "carol"})
	f.live, f.liveToken = c.GetSession().GetSessionId(), c.GetRefreshToken()
	d := e.login(&pb.CreateSessionRequest{UserId: "dave"})
	d1 := refresh(d.GetRefreshToken())
	revoke(d.GetSession().GetSessionId())
	f.revoked, f.revokedTokens = d.GetSession().GetSessionId(), []string{d.GetRefreshToken(), d1}

	// Day 30 + 1h: the first two ended an hour ago; a session revoked now.
	e.clock.Advance(10*24*time.Hour - 30*time.Minute + sweepRetention)
	h := e.login(&pb.CreateSessionRequest{UserId: "hana"})
	f.fresh = h.GetSession().GetSessionId()
	revoke(f.fresh)
	return f
}

func TestSweepDeletesOnlyEndedSessions(t *testing.T) {
	m := server.NewMetrics()
	e := newEnv(t, envOptions{server: server.Options{Metrics: m}})
	f := newSweepFixture(t, e)

	res, err := e.srv.SweepExpired(context.Background(), sweepRetention)
	if err != nil {
		t.Fatalf("SweepExpired: %v", err)
	}
	if res.Sessions != 2 || res.RefreshTokens != 5 {
		t.Errorf("swept %d sessions and %d refresh tokens, want 2 and 5", res.Sessions, res.RefreshTokens)
	}
	if got := sweptMetric(t, m); got["session"] != 2 || got["refresh_token"] != 5 {
		t.Errorf("portcullis_swept_total = %v, want session 2, refresh_token 5", got)
	}

	// Listing everything shows what is left, in creation order.
	ls, err := e.sessions.ListSessions(e.admin(), &pb.ListSessionsRequest{IncludeInactive: true})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range ls.GetSessions() {
		ids = append(ids, s.GetSessionId())
	}
	if want := []string{f.recent, f.live, f.revoked, f.fresh}; !slices.Equal(ids, want) {
		t.Errorf("sessions after the sweep: %q, want %q", ids, want)
	}

	// No record of the swept sessions' tokens remains, by hash or by session.
	err = e.store.View(context.Background(), func(tx storage.ReadTx) error {
		for i, id := range f.expired {
			if toks, err := collectTokens(tx, id); err != nil || len(toks) != 0 {
				t.Errorf("RefreshTokens(%s) after the sweep: %d tokens, %v", id, len(toks), err)
			}
			for _, tok := range f.expiredTokens[i] {
				h := sha256.Sum256([]byte(tok))
				if _, err := tx.RefreshToken(h[:]); err == nil {
					t.Errorf("a refresh token of swept session %s is still stored", id)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Each refresh token answers what its session's state says.
	wantRefresh := func(what, tok string, want pb.ErrorReason) {
		t.Helper()
		_, err := e.sessions.RefreshSession(context.Background(), &pb.RefreshSessionRequest{RefreshToken: tok})
		if _, reason := reasonOf(err); reason != want.String() {
			t.Errorf("refresh with %s: %v, want %s", what, err, want)
		}
	}
	for i := range f.expired {
		for _, tok := range f.expiredTokens[i] {
			// Swept: no longer a token of this authority.
			wantRefresh("a swept session's token", tok, pb.ErrorReason_TOKEN_INVALID)
		}
	}
	wantRefresh("a session ended within the retention", f.recentToken, pb.ErrorReason_SESSION_EXPIRED)
	wantRefresh("a revoked session's current token", f.revokedTokens[1], pb.ErrorReason_SESSION_REVOKED)
	wantRefresh("a revoked session's superseded token", f.revokedTokens[0], pb.ErrorReason_TOKEN_THEFT_DETECTED)
	if _, err := e.sessions.RefreshSession(context.Background(), &pb.RefreshSessionRequest{RefreshToken: f.liveToken}); err != nil {
		t.Errorf("refresh of the live session after the sweep: %v", err)
	}

	// A mirror starting now still learns of the revocation whose access
	// token is alive.
	w := e.watch(t, nil, &pb.WatchRequest{})
	snap := w.snapshot().GetSnapshot()
	if rs := snap.GetRevokedSessions(); len(rs) != 1 || rs[0].GetSessionId() != f.fresh {
		t.Errorf("snapshot after the sweep has revoked sessions %v, want only %s", rs, f.fresh)
	}

	// Sweeping again finds nothing; the others go once they have ended
	// (day 50): the fresh one ends on day 60.
	if res, err := e.srv.SweepExpired(context.Background(), sweepRetention); err != nil || res.Sessions != 0 || res.RefreshTokens != 0 {
		t.Errorf("second sweep: %+v, %v; want nothing deleted", res, err)
	}
	e.clock.Advance(20*24*time.Hour + sweepRetention)
	// recent (1 token), live (2: refreshed above), revoked (2).
	if res, err := e.srv.SweepExpired(context.Background(), sweepRetention); err != nil || res.Sessions != 3 || res.RefreshTokens != 5 {
		t.Errorf("sweep on day 50: %+v, %v; want 3 sessions and 5 tokens", res, err)
	}
	// bolttest checks the file (indexes included) when the test ends.
}

// A session with more refresh tokens than one Update deletes goes over
// several Updates, tokens first, and is found again until it is gone.
func TestSweepSplitsLongLineages(t *testing.T) {
	e := newEnv(t, envOptions{})
	s := e.login(&pb.CreateSessionRequest{UserId: "alice"})
	tok := s.GetRefreshToken()
	const rotations = 120 // 121 tokens: 242 keys, more than two batches
	for range rotations {
		r, err := e.sessions.RefreshSession(context.Background(), &pb.RefreshSessionRequest{RefreshToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		tok = r.GetRefreshToken()
	}
	e.clock.Advance(31 * 24 * time.Hour)
	res, err := e.srv.SweepExpired(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sessions != 1 || res.RefreshTokens != rotations+1 || res.Updates < 3 {
		t.Errorf("swept %+v, want 1 session and %d tokens over at least 3 Updates", res, rotations+1)
	}
}

// RunSweeper sweeps sessions and audit records on its own at its interval
// and returns when its context ends.
func TestRunSweeper(t *testing.T) {
	swept := make(chan struct{}, 1)
	log := slog.New(notifyHandler{msg: "swept old audit records", ch: swept, Handler: slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})})
	e := newEnv(t, envOptions{logger: log})
	s := e.login(&pb.CreateSessionRequest{UserId: "alice"})
	e.clock.Advance(31 * 24 * time.Hour)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	// The audit records of the setup (key creation, the login) are 31 days
	// old: a retention of 30 days sweeps them.
	go func() {
		defer close(done)
		e.srv.RunSweeper(ctx, server.SweepConfig{Interval: time.Millisecond, AuditRetention: 30 * 24 * time.Hour})
	}()
	select {
	case <-swept:
	case <-time.After(recvTimeout):
		t.Fatal("RunSweeper did not sweep")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(recvTimeout):
		t.Fatal("RunSweeper did not return after its context ended")
	}
	_, err := e.sessions.GetSession(e.admin(), &pb.GetSessionRequest{SessionId: s.GetSession().GetSessionId()})
	if code, _ := reasonOf(err); code != codes.NotFound {
		t.Errorf("GetSession of the ended session after the sweeper ran: %v, want NotFound", err)
	}
	aud, err := e.audit.ListAuditRecords(e.admin(), &pb.ListAuditRecordsRequest{Action: "session.create"})
	if err != nil || len(aud.GetRecords()) != 0 {
		t.Errorf("session.create records after the sweeper ran: %v, %v; want none", aud.GetRecords(), err)
	}
}

// SweepAudit deletes the audit records older than the retention, counts
// them in portcullis_swept_total{kind="audit"}, and keeps the rest.
func TestSweepAuditRecords(t *testing.T) {
	m := server.NewMetrics()
	e := newEnv(t, envOptions{server: server.Options{Metrics: m}})
	setup, err := e.audit.ListAuditRecords(e.admin(), &pb.ListAuditRecordsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	old := len(setup.GetRecords()) // the bootstrap key's and signing key's
	for range 3 {
		e.login(&pb.CreateSessionRequest{UserId: "alice"})
	}
	e.clock.Advance(24 * time.Hour)
	e.login(&pb.CreateSessionRequest{UserId: "bob"})
	e.clock.Advance(authority.DefaultAuditRetention)

	res, err := e.srv.SweepAudit(context.Background(), authority.DefaultAuditRetention)
	if err != nil || res.Records != old+3 {
		t.Fatalf("SweepAudit: %+v, %v; want %d records", res, err, old+3)
	}
	if got := sweptMetric(t, m)["audit"]; got != float64(old+3) {
		t.Errorf(`portcullis_swept_total{kind="audit"} = %v, want %d`, got, old+3)
	}
	left, err := e.audit.ListAuditRecords(e.admin(), &pb.ListAuditRecordsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if rs := left.GetRecords(); len(rs) != 1 || rs[0].GetSubject() != "user:bob" {
		t.Errorf("audit records after the sweep: %v, want bob's login alone", rs)
	}
}

// notifyHandler signals ch (without blocking) when a record with message
// msg is logged, at any level, and passes the rest to Handler.
type notifyHandler struct {
	slog.Handler
	msg string
	ch  chan struct{}
}

func (h notifyHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h notifyHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		select {
		case h.ch <- struct{}{}:
		default:
		}
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h notifyHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return notifyHandler{Handler: h.Handler.WithAttrs(as), msg: h.msg, ch: h.ch}
}

func (h notifyHandler) WithGroup(g string) slog.Handler {
	return notifyHandler{Handler: h.Handler.WithGroup(g), msg: h.msg, ch: h.ch}
}

func collectTokens(tx storage.ReadTx, sessionID string) ([]storage.RefreshToken, error) {
	var out []storage.RefreshToken
	for r, err := range tx.RefreshTokens(sessionID) {
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// sweptMetric reads portcullis_swept_total by kind.
func sweptMetric(t *testing.T, m *server.Metrics) map[string]float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "portcullis_swept_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "kind" {
					out[l.GetValue()] = mt.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}
