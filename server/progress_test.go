package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/server"
)

// TestStreamProgressKeys: only the key that opened a Watch stream reports
// for it, a wrong secret for that key's ID is refused, and a revoked key
// is refused once its stream has ended.
func TestStreamProgressKeys(t *testing.T) {
	e := newEnv(t, envOptions{server: server.Options{CheckpointInterval: 50 * time.Millisecond}})
	created, err := e.apiKeys.CreateAPIKey(e.admin(), &pb.CreateAPIKeyRequest{Name: "mirror", Scopes: []string{authority.ScopeEventsWatch}})
	if err != nil {
		t.Fatal(err)
	}
	secret := created.GetSecret()
	other := e.keyWith("other-mirror", authority.ScopeEventsWatch)

	ctx, cancel := context.WithTimeout(as(secret), 10*time.Second)
	defer cancel()
	stream, err := e.events.Watch(ctx, &pb.WatchRequest{Identity: &pb.MirrorIdentity{Service: "held-key-test"}})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	report := func(key string) error { return e.report(as(key), first.GetSubscriberId(), first.GetRevision()) }
	if err := report(secret); err != nil {
		t.Fatalf("report with the stream's key: %v", err)
	}

	// The key's ID with another secret: refused like any bad key.
	cut := strings.LastIndexByte(secret, '_') + 1
	forged := secret[:cut] + strings.Repeat("A", len(secret)-cut)
	wantStatus(t, report(forged), codes.Unauthenticated, "API_KEY_INVALID")
	// Another valid key may not report for this stream.
	wantStatus(t, report(other), codes.NotFound, "NOT_FOUND")

	// Revoke the key: its next report is refused, and its stream ends at
	// the next re-check.
	if _, err := e.apiKeys.RevokeAPIKey(e.admin(), &pb.RevokeAPIKeyRequest{ApiKeyId: created.GetApiKey().GetApiKeyId()}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, report(secret), codes.Unauthenticated, "API_KEY_INVALID")
	for {
		if _, err := stream.Recv(); err != nil {
			wantStatus(t, err, codes.Unauthenticated, "API_KEY_INVALID")
			break
		}
	}

}

// TestStreamProgress: reports as messages of one stream are recorded; a
// bad report ends the stream, and so does the end of its Watch stream.
func TestStreamProgress(t *testing.T) {
	e := newEnv(t, envOptions{})
	ban := func(user string) { e.ban(&pb.CreateBanRequest{Subject: userSubject(user)}) }
	ban("before")
	w := e.watch(t, nil, &pb.WatchRequest{Identity: &pb.MirrorIdentity{Service: "stream-progress-test"}})
	first := w.snapshot()
	applied := func() int64 {
		subs, err := e.events.ListSubscribers(e.admin(), &pb.ListSubscribersRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range subs.GetSubscribers() {
			if s.GetSubscriberId() == first.GetSubscriberId() {
				return s.GetAppliedRevision()
			}
		}
		t.Fatal("the subscriber is not listed")
		return 0
	}
	open := func(ctx context.Context) pb.EventService_StreamProgressClient {
		ps, err := e.events.StreamProgress(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	send := func(ps pb.EventService_StreamProgressClient, rev int64) {
		if err := ps.Send(&pb.StreamProgressRequest{SubscriberId: first.GetSubscriberId(), Revision: rev}); err != nil {
			t.Fatal(err)
		}
	}

	// Reports are recorded; closing answers with the current revision. The
	// change must have reached the stream first: a report of a revision
	// not yet sent on it is refused (REVISION_NOT_SENT, TestReportBeyondSent).
	ban("after")
	w.change(first.GetRevision(), first.GetRevision()+1)
	ps := open(e.admin())
	send(ps, first.GetRevision())
	send(ps, first.GetRevision()+1)
	resp, err := ps.CloseAndRecv()
	if err != nil || resp.GetCurrentRevision() != e.revision() {
		t.Fatalf("CloseAndRecv = %v, %v; want current revision %d", resp, err, e.revision())
	}
	if got := applied(); got != first.GetRevision()+1 {
		t.Fatalf("applied revision %d, want %d", got, first.GetRevision()+1)
	}

	// A negative revision, or another key's report, ends the stream.
	ps = open(e.admin())
	send(ps, -1)
	_, err = ps.CloseAndRecv()
	wantStatus(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
	ps = open(as(e.keyWith("other", authority.ScopeEventsWatch)))
	send(ps, first.GetRevision())
	_, err = ps.CloseAndRecv()
	wantStatus(t, err, codes.NotFound, "NOT_FOUND")

	// The end of the Watch stream ends the progress stream.
	ps = open(e.admin())
	send(ps, first.GetRevision()+1)
	w.close()
	err = ps.RecvMsg(new(pb.StreamProgressResponse))
	wantStatus(t, err, codes.NotFound, "NOT_FOUND")
}
