package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/server"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNoSecretReachesLogsErrorsAuditOrMetrics runs a full scenario with
// debug logging and then searches everything an operator or attacker
// could read (the logs, every error returned, every audit record and the
// whole store dump, the metrics) for every secret the scenario created or
// presented: API keys (whole, and their secret part after the ID), access
// tokens (whole, and their signature), refresh tokens (whole, and their
// random part).
func TestNoSecretReachesLogsErrorsAuditOrMetrics(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug, AddSource: true}))
	metrics := server.NewMetrics()
	e := newEnv(t, envOptions{logger: log, server: server.Options{Logger: log, Metrics: metrics}})
	var secrets []string
	var errs []string
	keep := func(err error) {
		if err == nil {
			return
		}
		st, _ := status.FromError(err)
		b, _ := protojson.Marshal(st.Proto()) // message and every detail
		errs = append(errs, err.Error(), string(b))
	}
	apiKey := func(s string) {
		secrets = append(secrets, s)
		rest := strings.TrimPrefix(s, authority.APIKeyPrefix)
		if i := strings.IndexByte(rest, '_'); i > 0 {
			secrets = append(secrets, rest[i+1:])
		}
	}
	access := func(s string) {
		secrets = append(secrets, s)
		if i := strings.LastIndexByte(s, '.'); i > 0 {
			secrets = append(secrets, s[i+1:])
		}
	}
	refresh := func(s string) {
		secrets = append(secrets, s, strings.TrimPrefix(s, "pcr_"))
	}
	sessionTokens := func(access0, refresh0 string) { access(access0); refresh(refresh0) }
	apiKey(e.adminKey)
	admin := e.admin()

	// API keys: a service key, a narrow one, then the service key revoked.
	ck, err := e.apiKeys.CreateAPIKey(admin, &pb.CreateAPIKeyRequest{Name: "svc", Scopes: []string{
		authority.ScopeSessionsWrite, authority.ScopeSessionsRead, authority.ScopeBansWrite, authority.ScopeBansRead}})
	if err != nil {
		t.Fatal(err)
	}
	svc := ck.GetSecret()
	apiKey(svc)
	narrow := e.keyWith("narrow", authority.ScopeBansRead)
	apiKey(narrow)

	// Sessions, refresh, theft.
	s1, err := e.sessions.CreateSession(as(svc), &pb.CreateSessionRequest{UserId: "alice", DeviceId: "d1", ClientIp: "203.0.113.7"})
	if err != nil {
		t.Fatal(err)
	}
	sessionTokens(s1.GetAccessToken(), s1.GetRefreshToken())
	r1, err := e.sessions.RefreshSession(context.Background(), &pb.RefreshSessionRequest{RefreshToken: s1.GetRefreshToken()})
	if err != nil {
		t.Fatal(err)
	}
	sessionTokens(r1.GetAccessToken(), r1.GetRefreshToken())
	_, err = e.sessions.RefreshSession(context.Background(), &pb.RefreshSessionRequest{RefreshToken: s1.GetRefreshToken()})
	keep(err) // theft
	s2, err := e.sessions.CreateSession(as(svc), &pb.CreateSessionRequest{UserId: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	sessionTokens(s2.GetAccessToken(), s2.GetRefreshToken())
	if _, err := e.sessions.VerifySession(as(svc), &pb.VerifySessionRequest{AccessToken: s2.GetAccessToken()}); err != nil {
		t.Fatal(err)
	}
	_, err = e.sessions.VerifySession(as(svc), &pb.VerifySessionRequest{AccessToken: r1.GetAccessToken()})
	keep(err) // revoked by the theft

	// Bans: create, check, refusals, lift.
	ban, err := e.bans.CreateBan(as(svc), &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "bob"}}, Reason: "spam"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.sessions.VerifySession(as(svc), &pb.VerifySessionRequest{AccessToken: s2.GetAccessToken()})
	keep(err)
	_, err = e.sessions.RefreshSession(context.Background(), &pb.RefreshSessionRequest{RefreshToken: s2.GetRefreshToken()})
	keep(err)
	if _, err := e.bans.LiftBan(as(svc), &pb.LiftBanRequest{BanId: ban.GetBan().GetBanId(), Reason: "appeal"}); err != nil {
		t.Fatal(err)
	}
	s3, err := e.sessions.CreateSession(as(svc), &pb.CreateSessionRequest{UserId: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	sessionTokens(s3.GetAccessToken(), s3.GetRefreshToken())
	if _, err := e.sessions.RevokeSession(as(svc), &pb.RevokeSessionRequest{SessionId: s3.GetSession().GetSessionId(), Reason: "logout"}); err != nil {
		t.Fatal(err)
	}
	_, err = e.sessions.RefreshSession(context.Background(), &pb.RefreshSessionRequest{RefreshToken: s3.GetRefreshToken()})
	keep(err)

	// Denied calls: a missing scope, a mangled key, made-up tokens.
	_, err = e.bans.CreateBan(as(narrow), &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "x"}}})
	keep(err)
	last := "A"
	if strings.HasSuffix(svc, "A") {
		last = "B"
	}
	mangled := svc[:len(svc)-1] + last // the right ID, a wrong secret
	apiKey(mangled)
	_, err = e.bans.ListBans(as(mangled), &pb.ListBansRequest{})
	keep(err)
	fakeRefresh := "pcr_" + strings.Repeat("Q", 43)
	refresh(fakeRefresh)
	_, err = e.sessions.RefreshSession(context.Background(), &pb.RefreshSessionRequest{RefreshToken: fakeRefresh})
	keep(err)
	tampered := s2.GetAccessToken()[:len(s2.GetAccessToken())-2] + "AA"
	access(tampered)
	_, err = e.sessions.VerifySession(as(svc), &pb.VerifySessionRequest{AccessToken: tampered})
	keep(err)

	// Revoke the service key; its next call is denied.
	if _, err := e.apiKeys.RevokeAPIKey(admin, &pb.RevokeAPIKeyRequest{ApiKeyId: ck.GetApiKey().GetApiKeyId()}); err != nil {
		t.Fatal(err)
	}
	_, err = e.sessions.ListSessions(as(svc), &pb.ListSessionsRequest{})
	keep(err)
	if len(errs) < 10 {
		t.Fatalf("only %d errors collected; the scenario did not run", len(errs)/2)
	}

	// Everything readable.
	keys, err := e.apiKeys.ListAPIKeys(admin, &pb.ListAPIKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	keysJSON, _ := protojson.Marshal(keys)
	aud, err := e.audit.ListAuditRecords(admin, &pb.ListAuditRecordsRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(aud.GetRecords()) < 10 {
		t.Fatalf("only %d audit records", len(aud.GetRecords()))
	}
	audJSON, _ := protojson.Marshal(aud)
	rec := httptest.NewRecorder()
	metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	metricsText, _ := io.ReadAll(rec.Body)
	if !strings.Contains(logs.String(), "ban created") {
		t.Fatalf("the debug log did not capture the scenario:\n%s", logs.String())
	}

	places := map[string]string{
		"logs":       logs.String(),
		"errors":     strings.Join(errs, "\n"),
		"audit":      string(audJSON),
		"api keys":   string(keysJSON),
		"store dump": e.dump(),
		"metrics":    string(metricsText),
	}
	for _, s := range secrets {
		if len(s) < 16 {
			t.Fatalf("secret %q is too short to search for", s)
		}
		for where, text := range places {
			if strings.Contains(text, s) {
				t.Errorf("a secret (%.12s...) appears in the %s", s, where)
			}
		}
	}
}
