package authoritytest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/authoritytest/embedetcd"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// Restart keeps the data, the admin key, a key from NewAPIKey and the
// loopback port; clients from Dial work again at once. While stopped,
// calls fail.
func TestStopRestart(t *testing.T) {
	a := authoritytest.Start(t, authoritytest.Options{Loopback: true})
	ctx := context.Background()
	admin := a.Dial()
	reader := a.Dial(client.WithAPIKey(a.NewAPIKey("reader", "bans:read")))
	ban, err := admin.Bans.CreateBan(ctx, userBan("mallory"))
	if err != nil {
		t.Fatal(err)
	}
	storeID, rev, addr := a.StoreID(), a.Revision(), a.Addr()

	a.Stop()
	a.Stop() // harmless
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := admin.Bans.GetBan(short, &pb.GetBanRequest{BanId: ban.GetBan().GetBanId()}); err == nil {
		t.Fatal("a stopped authority answered")
	}

	a.Restart()
	if a.StoreID() != storeID || a.Revision() != rev || a.Addr() != addr {
		t.Fatalf("after Restart: %s/%d at %s, was %s/%d at %s", a.StoreID(), a.Revision(), a.Addr(), storeID, rev, addr)
	}
	for _, c := range []*client.Client{admin, reader} {
		if _, err := c.Bans.GetBan(ctx, &pb.GetBanRequest{BanId: ban.GetBan().GetBanId()}); err != nil {
			t.Fatalf("GetBan after Restart: %v", err)
		}
	}
	tcp, err := client.Dial(addr, client.WithInsecure(), client.WithAPIKey(a.AdminKey))
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	if _, err := tcp.Events.GetRevision(ctx, &pb.GetRevisionRequest{}); err != nil {
		t.Fatalf("GetRevision on the loopback port after Restart: %v", err)
	}
	a.Restart() // a running authority restarts too
	if _, err := admin.Events.GetRevision(ctx, &pb.GetRevisionRequest{}); err != nil {
		t.Fatalf("GetRevision after a second Restart: %v", err)
	}
}

// A mirror follows an authority across Restart without a new snapshot;
// a fresh Authority has another store.
func TestRestartMirrorResumes(t *testing.T) {
	a := authoritytest.Start(t, authoritytest.Options{CheckpointInterval: 20 * time.Millisecond})
	m := client.NewMirror(a.Dial(client.WithAPIKey(a.NewAPIKey("svc", "events:watch"))), client.MirrorOptions{Clock: a.Clock().Now})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- m.Run(ctx) }()
	defer func() { cancel(); <-ran }()
	if err := m.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	a.Restart()
	if _, err := a.Dial().Bans.CreateBan(ctx, userBan("mallory")); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitRevision(ctx, a.Revision()); err != nil {
		t.Fatal(err)
	}
	if st := m.Stats(); st.Resets != 1 || st.StoreID != a.StoreID() {
		t.Fatalf("after Restart: %d snapshots of store %q, want 1 of %q", st.Resets, st.StoreID, a.StoreID())
	}
	if other := authoritytest.Start(t, authoritytest.Options{}); other.StoreID() == a.StoreID() {
		t.Fatalf("two authorities share store %q", a.StoreID())
	}
}

// DialContext connects a plain grpc.ClientConn.
func TestDialContext(t *testing.T) {
	a := authoritytest.Start(t, authoritytest.Options{})
	conn, err := grpc.NewClient("passthrough:///authority", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(a.DialContext))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Without an API key: refused by the authority, so it was reached.
	_, err = pb.NewEventServiceClient(conn).GetRevision(context.Background(), &pb.GetRevisionRequest{})
	if !errors.Is(client.FromStatus(err), client.ErrAPIKeyInvalid) {
		t.Fatalf("GetRevision without a key: %v, want ErrAPIKeyInvalid", err)
	}
	a.Stop()
	if _, err := a.DialContext(context.Background(), ""); err == nil {
		t.Fatal("DialContext reached a stopped authority")
	}
}

// SeedBans writes bans that the authority enforces and a mirror's
// snapshot holds, without an event; SnapshotPartSize splits the snapshot.
func TestSeedBans(t *testing.T) {
	a := authoritytest.Start(t, authoritytest.Options{SnapshotPartSize: 600})
	ctx := context.Background()
	before := a.Revision()
	expire := a.Clock().Now().Add(time.Hour)
	const n = 20
	a.SeedBans(n, func(i int) *pb.Ban {
		b := &pb.Ban{BanId: fmt.Sprintf("ban_%026d", i), Reason: "spam"}
		switch i % 3 {
		case 0:
			b.Subject = &pb.Subject{Kind: &pb.Subject_UserId{UserId: fmt.Sprint("user-", i)}}
		case 1:
			b.Subject = &pb.Subject{Kind: &pb.Subject_DeviceId{DeviceId: fmt.Sprint("device-", i)}}
			b.ExpireTime = timestamppb.New(expire)
		default:
			b.Subject = &pb.Subject{Kind: &pb.Subject_Ip{Ip: fmt.Sprintf("203.0.113.%d", i)}}
		}
		return b
	})
	if after := a.Revision(); after != before {
		t.Fatalf("revision %d after SeedBans, want %d (no event)", after, before)
	}
	admin := a.Dial()
	got, err := admin.Bans.GetBan(ctx, &pb.GetBanRequest{BanId: fmt.Sprintf("ban_%026d", 1)})
	if err != nil {
		t.Fatal(err)
	}
	if b := got.GetBan(); b.GetTenantId() != "public" || b.GetCreatedBy() != "authoritytest" ||
		!b.GetCreateTime().AsTime().Equal(a.Clock().Now()) || !b.GetExpireTime().AsTime().Equal(expire) ||
		b.GetState() != pb.BanState_BAN_STATE_ACTIVE {
		t.Fatalf("seeded ban: %v", b)
	}
	if _, err := admin.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{UserId: "user-3"}); !errors.Is(err, client.ErrUserBanned) {
		t.Fatalf("CreateSession of a seeded banned user: %v, want ErrUserBanned", err)
	}
	stream, err := admin.Events.Watch(ctx, &pb.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	parts, bans := 0, 0
	for more := true; more; {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		parts, bans, more = parts+1, bans+len(resp.GetSnapshot().GetBans()), resp.GetSnapshot().GetMore()
	}
	if parts < 2 || bans != n {
		t.Fatalf("snapshot of %d bans in %d parts, want %d bans in several", bans, parts, n)
	}
}

// Replicas over one etcd store serve the same data, each on its own port;
// one stops without the others.
func TestStartReplicas(t *testing.T) {
	endpoints := embedetcd.Start(t)
	rs := authoritytest.StartReplicas(t, 2, authoritytest.Options{EtcdEndpoints: endpoints})
	ctx := context.Background()
	if rs[0].StoreID() != rs[1].StoreID() || rs[0].AdminKey != rs[1].AdminKey || rs[0].Addr() == rs[1].Addr() || rs[0].Addr() == "" {
		t.Fatalf("replicas: store %q/%q, admin key equal %v, addresses %q/%q",
			rs[0].StoreID(), rs[1].StoreID(), rs[0].AdminKey == rs[1].AdminKey, rs[0].Addr(), rs[1].Addr())
	}
	b, err := rs[0].Dial().Bans.CreateBan(ctx, userBan("mallory"))
	if err != nil {
		t.Fatal(err)
	}
	rs[0].Stop()
	c, err := client.Dial(rs[1].Addr(), client.WithInsecure(), client.WithAPIKey(rs[1].AdminKey))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Bans.GetBan(ctx, &pb.GetBanRequest{BanId: b.GetBan().GetBanId()}); err != nil {
		t.Fatalf("GetBan on the other replica: %v", err)
	}
	rs[0].Restart()
	if rev := rs[0].Revision(); rev != rs[1].Revision() {
		t.Fatalf("revisions %d and %d", rev, rs[1].Revision())
	}
	// Independent authorities on one etcd share nothing.
	if other := authoritytest.Start(t, authoritytest.Options{EtcdEndpoints: endpoints}); other.StoreID() == rs[0].StoreID() {
		t.Fatal("an authority on the same etcd shares the replicas' store")
	}
}
