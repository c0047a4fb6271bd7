package server_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/server"
)

// slow is a rate that does not refill within a test.
const slow = 1e-6

func TestFailedAuthRateLimit(t *testing.T) {
	e := newEnv(t, envOptions{server: server.Options{Limits: server.Limits{FailedAuthPerSecond: slow, FailedAuthBurst: 3}}})
	bad := as(authority.APIKeyPrefix + "nope_0000")
	for i := range 3 {
		_, err := e.bans.ListBans(bad, &pb.ListBansRequest{})
		if i == 0 {
			wantStatus(t, err, codes.Unauthenticated, "API_KEY_INVALID")
		}
	}
	_, err := e.bans.ListBans(bad, &pb.ListBansRequest{})
	info := wantStatus(t, err, codes.ResourceExhausted, "RESOURCE_EXHAUSTED")
	if info.GetMetadata()["limit"] != "failed_auth_rate" {
		t.Fatalf("metadata %v", info.GetMetadata())
	}
	_, err = e.bans.ListBans(context.Background(), &pb.ListBansRequest{})
	wantStatus(t, err, codes.ResourceExhausted, "RESOURCE_EXHAUSTED")
	// A valid key from the same address is not affected.
	if _, err := e.bans.ListBans(e.admin(), &pb.ListBansRequest{}); err != nil {
		t.Fatal(err)
	}
	// Only the failures within the budget were audited.
	aud, err := e.audit.ListAuditRecords(e.admin(), &pb.ListAuditRecordsRequest{Action: "call.denied"})
	if err != nil || len(aud.GetRecords()) != 3 {
		t.Fatalf("%d call.denied records (%v), want 3", len(aud.GetRecords()), err)
	}
}

func TestRefreshRateLimit(t *testing.T) {
	e := newEnv(t, envOptions{server: server.Options{Limits: server.Limits{RefreshPerSecond: slow, RefreshBurst: 2}}})
	s := e.login(&pb.CreateSessionRequest{UserId: "alice"})
	rt := s.GetRefreshToken()
	for range 2 {
		r, err := e.sessions.RefreshSession(context.Background(), &pb.RefreshSessionRequest{RefreshToken: rt})
		if err != nil {
			t.Fatal(err)
		}
		rt = r.GetRefreshToken()
	}
	_, err := e.sessions.RefreshSession(context.Background(), &pb.RefreshSessionRequest{RefreshToken: rt})
	info := wantStatus(t, err, codes.ResourceExhausted, "RESOURCE_EXHAUSTED")
	if info.GetMetadata()["limit"] != "refresh_rate" {
		t.Fatalf("metadata %v", info.GetMetadata())
	}
}

func TestCreateSessionRateLimitPerKey(t *testing.T) {
	e := newEnv(t, envOptions{server: server.Options{Limits: server.Limits{CreateSessionPerSecond: slow, CreateSessionBurst: 2}}})
	k1, k2 := e.keyWith("svc1", authority.ScopeSessionsWrite), e.keyWith("svc2", authority.ScopeSessionsWrite)
	for range 2 {
		if _, err := e.sessions.CreateSession(as(k1), &pb.CreateSessionRequest{UserId: "u"}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.sessions.CreateSession(as(k1), &pb.CreateSessionRequest{UserId: "u"})
	info := wantStatus(t, err, codes.ResourceExhausted, "RESOURCE_EXHAUSTED")
	if info.GetMetadata()["limit"] != "create_session_rate" {
		t.Fatalf("metadata %v", info.GetMetadata())
	}
	if _, err := e.sessions.CreateSession(as(k2), &pb.CreateSessionRequest{UserId: "u"}); err != nil {
		t.Fatalf("another key was limited too: %v", err)
	}
}

func TestWatchersPerKey(t *testing.T) {
	e := newEnv(t, envOptions{server: server.Options{Limits: server.Limits{MaxWatchersPerKey: 2}}})
	key := e.keyWith("mirror", authority.ScopeEventsWatch)
	open := func() (pb.EventService_WatchClient, context.CancelFunc, error) {
		ctx, cancel := context.WithTimeout(as(key), 10*time.Second)
		st, err := e.events.Watch(ctx, &pb.WatchRequest{})
		if err == nil {
			_, err = st.Recv()
		}
		return st, cancel, err
	}
	_, c1, err := open()
	if err != nil {
		t.Fatal(err)
	}
	_, c2, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer c2()
	_, c3, err := open()
	defer c3()
	info := wantStatus(t, err, codes.ResourceExhausted, "RESOURCE_EXHAUSTED")
	if info.GetMetadata()["limit"] != "watchers_per_key" {
		t.Fatalf("metadata %v", info.GetMetadata())
	}
	// Another key has its own bound; closing a stream frees a slot.
	if _, c, err := func() (pb.EventService_WatchClient, context.CancelFunc, error) {
		ctx, cancel := context.WithTimeout(e.admin(), 10*time.Second)
		st, err := e.events.Watch(ctx, &pb.WatchRequest{})
		if err == nil {
			_, err = st.Recv()
		}
		return st, cancel, err
	}(); err != nil {
		t.Fatal(err)
	} else {
		defer c()
	}
	c1()
	// The slot is freed when the server sees the stream end: poll for it.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(time.Minute) // a hang guard
	for {
		_, c, err := open()
		c()
		if err == nil {
			break
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("no slot freed after closing a stream: %v", err)
		}
	}
}
