package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd/etcdtest"
	"github.com/portcullis-dev/portcullis/server"
)

// replica is one authority process of a fleet: its own etcd client, store,
// authority and gRPC server (over bufconn), sharing the key prefix of the
// others.
type replica struct {
	srv      *server.Server
	lis      *bufconn.Listener
	store    *etcd.Store
	auth     *authority.Authority
	conn     *grpc.ClientConn
	sessions pb.SessionServiceClient
	bans     pb.BanServiceClient
	events   pb.EventServiceClient
	keys     pb.KeyServiceClient
}

// newReplica starts an authority over the store under prefix on members. It
// does not bootstrap keys: see bootstrapReplicas.
func newReplica(t testing.TB, prefix string, clock func() time.Time, members ...*etcdtest.Member) *replica {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	r := &replica{store: etcdtest.Open(t, etcd.Options{Prefix: prefix, Logger: log}, members...)}
	r.auth = authority.New(r.store, authority.Config{Clock: clock, Logger: log})
	srv := server.New(r.auth, server.Options{Logger: log})
	g := srv.NewGRPCServer()
	lis := bufconn.Listen(1 << 20)
	go g.Serve(lis)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Shutdown()
		g.Stop()
	})
	r.srv, r.lis, r.conn = srv, lis, conn
	r.sessions = pb.NewSessionServiceClient(conn)
	r.bans = pb.NewBanServiceClient(conn)
	r.events = pb.NewEventServiceClient(conn)
	r.keys = pb.NewKeyServiceClient(conn)
	return r
}

// bootstrapReplicas starts n replicas over a fresh prefix and runs the
// first-start steps of `serve` on all of them at once, as n processes
// started together would. It returns the replicas and the bootstrap admin
// key, which exactly one of them must have created.
func bootstrapReplicas(t testing.TB, n int, clock func() time.Time, members ...*etcdtest.Member) ([]*replica, string) {
	t.Helper()
	prefix := etcdtest.NewPrefix()
	rs := make([]*replica, n)
	for i := range rs {
		rs[i] = newReplica(t, prefix, clock, members...)
	}
	secrets := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Go(func() {
			ctx := context.Background()
			if errs[i] = r.auth.EnsureSigningKey(ctx); errs[i] == nil {
				secrets[i], errs[i] = r.auth.EnsureBootstrapKey(ctx)
			}
		})
	}
	wg.Wait()
	var created []string
	for i := range rs {
		if errs[i] != nil {
			t.Fatalf("replica %d bootstrap: %v", i, errs[i])
		}
		if secrets[i] != "" {
			created = append(created, secrets[i])
		}
	}
	if len(created) != 1 {
		t.Fatalf("%d replicas created a bootstrap key, want exactly 1", len(created))
	}
	return rs, created[0]
}

// kidOf returns the key ID in an access token's header.
func kidOf(t testing.TB, tok string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

// recvChange reads stream messages until a change arrives and returns it
// with its revision and store ID.
func recvChange(t testing.TB, stream pb.EventService_WatchClient) *pb.WatchResponse {
	t.Helper()
	for {
		msg, err := stream.Recv()
		if err != nil {
			t.Fatalf("Watch Recv: %v", err)
		}
		if msg.GetChange() != nil {
			return msg
		}
	}
}

// TestReplicas runs several authority replicas over one embedded etcd
// server (each subtest its own key prefix): everything one replica writes
// is what every other one reads, checks and streams.
func TestReplicas(t *testing.T) {
	m := etcdtest.Start(t, etcdtest.Config{})
	clock := &testClock{now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}

	// The first start of three replicas at once: one signing key, one
	// bootstrap admin key (checked by bootstrapReplicas), shared by all.
	t.Run("BootstrapOnce", func(t *testing.T) {
		rs, admin := bootstrapReplicas(t, 3, clock.Now, m)
		var ids []string
		for _, r := range rs {
			resp, err := r.keys.ListKeys(as(admin), &pb.ListKeysRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.GetKeys()) != 1 {
				t.Fatalf("%d signing keys, want 1", len(resp.GetKeys()))
			}
			ids = append(ids, resp.GetKeys()[0].GetKeyId())
		}
		if ids[0] != ids[1] || ids[1] != ids[2] {
			t.Fatalf("replicas see signing keys %v", ids)
		}
		err := rs[0].store.View(t.Context(), func(tx storage.ReadTx) error {
			n := 0
			for _, err := range tx.APIKeys() {
				if err != nil {
					return err
				}
				n++
			}
			if n != 1 {
				t.Errorf("%d API keys after three first starts, want 1", n)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	// A ban created on replica 1 refuses a login on replica 2 and reaches
	// the Watch streams of replicas 1 and 3 under the same revision and
	// store ID.
	t.Run("BanOnOneReplicaEverywhere", func(t *testing.T) {
		rs, admin := bootstrapReplicas(t, 3, clock.Now, m)
		ctx, cancel := context.WithTimeout(as(admin), recvTimeout)
		defer cancel()
		var streams []pb.EventService_WatchClient
		for _, r := range []*replica{rs[0], rs[2]} {
			s, err := r.events.Watch(ctx, &pb.WatchRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if msg, err := s.Recv(); err != nil || msg.GetSnapshot() == nil {
				t.Fatalf("first Watch message: %v, %v; want a snapshot", msg, err)
			}
			streams = append(streams, s)
		}
		resp, err := rs[0].bans.CreateBan(as(admin), &pb.CreateBanRequest{
			Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "mallory"}}, Reason: "spam",
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = rs[1].sessions.CreateSession(as(admin), &pb.CreateSessionRequest{UserId: "mallory"})
		wantStatus(t, err, codes.PermissionDenied, "USER_BANNED")

		var got []*pb.WatchResponse
		for _, s := range streams {
			msg := recvChange(t, s)
			ev := msg.GetChange().GetEvents()
			if len(ev) != 1 || ev[0].GetBanCreated().GetBanId() != resp.GetBan().GetBanId() {
				t.Fatalf("change %v, want the creation of %s", msg.GetChange(), resp.GetBan().GetBanId())
			}
			got = append(got, msg)
		}
		if got[0].GetRevision() != got[1].GetRevision() || got[0].GetStoreId() != got[1].GetStoreId() {
			t.Fatalf("replica 1 streamed revision %d of %s, replica 3 revision %d of %s",
				got[0].GetRevision(), got[0].GetStoreId(), got[1].GetRevision(), got[1].GetStoreId())
		}
		// A subscriber of replica 1 resumes on replica 2 from that
		// revision, without a snapshot: the revisions are the store's.
		s, err := rs[1].events.Watch(ctx, &pb.WatchRequest{AfterRevision: got[0].GetRevision(), StoreId: got[0].GetStoreId()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rs[2].bans.LiftBan(as(admin), &pb.LiftBanRequest{BanId: resp.GetBan().GetBanId(), Reason: "appeal"}); err != nil {
			t.Fatal(err)
		}
		for {
			msg, err := s.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if msg.GetSnapshot() != nil {
				t.Fatalf("resuming on another replica sent a snapshot")
			}
			if c := msg.GetChange(); c != nil {
				if c.GetEvents()[0].GetBanLifted().GetBanId() != resp.GetBan().GetBanId() || msg.GetRevision() <= got[0].GetRevision() {
					t.Fatalf("change after resuming: %v at %d", c, msg.GetRevision())
				}
				break
			}
		}
	})

	// Two replicas rotate the same refresh token at once: one wins, the
	// other gets TOKEN_THEFT_DETECTED, and the session is revoked for both.
	t.Run("RefreshRace", func(t *testing.T) {
		rs, admin := bootstrapReplicas(t, 3, clock.Now, m)
		for range 5 {
			s, err := rs[0].sessions.CreateSession(as(admin), &pb.CreateSessionRequest{UserId: "gina"})
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			results := make([]error, 2)
			winners := make([]*pb.RefreshSessionResponse, 2)
			for i, r := range rs[1:] {
				wg.Go(func() {
					<-start
					winners[i], results[i] = r.sessions.RefreshSession(context.Background(), &pb.RefreshSessionRequest{RefreshToken: s.GetRefreshToken()})
				})
			}
			close(start)
			wg.Wait()
			var winner *pb.RefreshSessionResponse
			theft := 0
			for i, err := range results {
				if err == nil {
					winner = winners[i]
					continue
				}
				if code, reason := reasonOf(err); code == codes.Unauthenticated && reason == "TOKEN_THEFT_DETECTED" {
					theft++
				} else {
					t.Fatalf("refresh on replica %d: %v", i+2, err)
				}
			}
			if winner == nil || theft != 1 {
				t.Fatalf("one winner and one TOKEN_THEFT_DETECTED wanted, got winner %v and %d thefts", winner != nil, theft)
			}
			g, err := rs[0].sessions.GetSession(as(admin), &pb.GetSessionRequest{SessionId: s.GetSession().GetSessionId()})
			if err != nil || g.GetSession().GetRevokeTime() == nil {
				t.Fatalf("session not revoked: %v %v", g, err)
			}
			_, err = rs[0].sessions.RefreshSession(context.Background(), &pb.RefreshSessionRequest{RefreshToken: winner.GetRefreshToken()})
			wantStatus(t, err, codes.Unauthenticated, "SESSION_REVOKED")
		}
		var conflicts int64
		for _, r := range rs {
			conflicts += r.store.Conflicts()
		}
		t.Logf("optimistic transactions that lost a race and ran again: %d", conflicts)
	})

	// A key rotated on replica 1 signs the next login on replica 2 (whose
	// cached current key is the old one) and verifies on replica 3.
	t.Run("RotationUsedByAll", func(t *testing.T) {
		rs, admin := bootstrapReplicas(t, 3, clock.Now, m)
		before, err := rs[1].sessions.CreateSession(as(admin), &pb.CreateSessionRequest{UserId: "ann"})
		if err != nil {
			t.Fatal(err)
		}
		rot, err := rs[0].keys.RotateKey(as(admin), &pb.RotateKeyRequest{Reason: "scheduled"})
		if err != nil {
			t.Fatal(err)
		}
		if kidOf(t, before.GetAccessToken()) != rot.GetRetiredKey().GetKeyId() {
			t.Fatalf("token before the rotation signed by %s, want %s", kidOf(t, before.GetAccessToken()), rot.GetRetiredKey().GetKeyId())
		}
		after, err := rs[1].sessions.CreateSession(as(admin), &pb.CreateSessionRequest{UserId: "ann"})
		if err != nil {
			t.Fatal(err)
		}
		if kid := kidOf(t, after.GetAccessToken()); kid != rot.GetKey().GetKeyId() {
			t.Fatalf("login on replica 2 after rotating on replica 1 signed by %s, want the new key %s", kid, rot.GetKey().GetKeyId())
		}
		for _, tok := range []string{before.GetAccessToken(), after.GetAccessToken()} {
			if _, err := rs[2].sessions.VerifySession(as(admin), &pb.VerifySessionRequest{AccessToken: tok}); err != nil {
				t.Fatalf("VerifySession on replica 3: %v", err)
			}
		}
		keys, err := rs[2].keys.ListKeys(as(admin), &pb.ListKeysRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(keys.GetKeys()) != 2 || keys.GetKeys()[0].GetKeyId() != rot.GetKey().GetKeyId() {
			t.Fatalf("replica 3 lists keys %v, want the new key first and the retired one", keys.GetKeys())
		}
	})
}
