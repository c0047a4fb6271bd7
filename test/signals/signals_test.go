package signals_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/test/serveproc"
)

// authority is one serve process and an admin client of it.
type authority struct {
	http  string // its HTTP address, whose http:// URL is its --public-url
	admin *client.Client
}

// start starts an authority whose tokens' issuer is its public URL, so
// that another authority can trust them (issuers add) through discovery.
func start(t *testing.T, bin string) authority {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	addr, httpAddr := serveproc.FreeAddr(t), serveproc.FreeAddr(t)
	p := serveproc.Start(t, bin, "--listen", addr, "--http-listen", httpAddr, "--data", data, "--console", "off",
		"--checkpoint-interval", "200ms", "--issuer", "http://"+httpAddr)
	t.Cleanup(p.Stop)
	key, err := os.ReadFile(filepath.Join(data, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(addr, client.WithAPIKey(strings.TrimSpace(string(key))), client.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return authority{http: httpAddr, admin: c}
}

// events follows an authority's event stream from now on.
type events struct {
	t      *testing.T
	stream pb.EventService_WatchClient
}

func watch(ctx context.Context, t *testing.T, a authority) *events {
	t.Helper()
	rev, err := a.admin.Events.GetRevision(ctx, &pb.GetRevisionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := a.admin.Events.Watch(ctx, &pb.WatchRequest{AfterRevision: rev.GetRevision()})
	if err != nil {
		t.Fatal(err)
	}
	return &events{t: t, stream: s}
}

// next waits for the first event matching f (the context is the hang
// guard) and returns it.
func (e *events) next(what string, f func(*pb.Event) bool) *pb.Event {
	e.t.Helper()
	for {
		m, err := e.stream.Recv()
		if err != nil {
			e.t.Fatalf("waiting for %s: %v", what, err)
		}
		for _, ev := range m.GetChange().GetEvents() {
			if f(ev) {
				return ev
			}
		}
	}
}

func userBan(user string) *pb.CreateBanRequest {
	return &pb.CreateBanRequest{TenantId: "acme", Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: user}}, Reason: "fraud at A"}
}

// TestAToB: B receives A's signals, by push and by poll. A ban of a user at
// A bans them at B (RISC account-disabled), its lift at A lifts B's ban
// (account-enabled), and a revocation of a user's session at A (CAEP
// session-revoked) revokes the user's sessions at B while B cannot name
// A's session, and that one session once B trusts A's tokens (A
// registered as an issuer at B).
func TestAToB(t *testing.T) {
	for _, delivery := range []string{"push", "poll"} {
		t.Run(delivery, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // hang guard
			defer cancel()
			bin := serveproc.Build(t)
			a, b := start(t, bin), start(t, bin)
			key, err := a.admin.APIKeys.CreateAPIKey(ctx, &pb.CreateAPIKeyRequest{Name: "receiver-b", Scopes: []string{"signals"}})
			if err != nil {
				t.Fatal(err)
			}
			tx, err := b.admin.Signals.CreateTransmitter(ctx, &pb.CreateTransmitterRequest{
				ConfigUrl: "http://" + a.http, Audience: "https://b.example", Delivery: delivery,
				BearerToken: key.GetSecret(), TenantId: "acme", BanDuration: durationpb.New(time.Hour),
			})
			if err != nil {
				t.Fatalf("B: CreateTransmitter of A: %v", err)
			}
			id := tx.GetTransmitter().GetTransmitterId()
			if tx.GetTransmitter().GetIssuer() != "http://"+a.http || len(tx.GetTransmitter().GetKeyIds()) == 0 {
				t.Fatalf("transmitter: %v", tx.GetTransmitter())
			}
			atB := watch(ctx, t, b)

			ban, err := a.admin.Bans.CreateBan(ctx, userBan("alice"))
			if err != nil {
				t.Fatal(err)
			}
			got := atB.next("B's ban of alice", func(e *pb.Event) bool { return e.GetBanCreated().GetSubject().GetUserId() == "alice" }).GetBanCreated()
			if got.GetCreatedBy() != "ssf:"+id || got.GetTenantId() != "acme" || got.GetPolicy() != "ssf:account-disabled" || got.GetExpireTime() == nil {
				t.Fatalf("B's ban: %v", got)
			}
			if _, err := a.admin.Bans.LiftBan(ctx, &pb.LiftBanRequest{BanId: ban.GetBan().GetBanId()}); err != nil {
				t.Fatal(err)
			}
			atB.next("the lift of B's ban", func(e *pb.Event) bool { return e.GetBanLifted().GetBanId() == got.GetBanId() })

			bs, err := b.admin.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{TenantId: "acme", UserId: "bob"})
			if err != nil {
				t.Fatal(err)
			}
			as, err := a.admin.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{TenantId: "acme", UserId: "bob"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.admin.Sessions.RevokeSession(ctx, &pb.RevokeSessionRequest{SessionId: as.GetSession().GetSessionId()}); err != nil {
				t.Fatal(err)
			}
			atB.next("the revocation of bob's session at B", func(e *pb.Event) bool {
				return e.GetSessionRevoked().GetSessionId() == bs.GetSession().GetSessionId()
			})

			issuerA := "http://" + a.http
			if _, err := b.admin.Issuers.CreateIssuer(ctx, &pb.CreateIssuerRequest{Issuer: &pb.Issuer{
				Issuer: issuerA, TenantId: "acme", Audiences: []string{"portcullis"}}}); err != nil {
				t.Fatalf("B: CreateIssuer of A: %v", err)
			}
			cs, err := a.admin.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{TenantId: "acme", UserId: "carol"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.admin.Sessions.RevokeSession(ctx, &pb.RevokeSessionRequest{SessionId: cs.GetSession().GetSessionId()}); err != nil {
				t.Fatal(err)
			}
			ext := atB.next("the revocation of A's session at B", func(e *pb.Event) bool {
				return e.GetSessionRevoked().GetIssuer() == issuerA
			}).GetSessionRevoked()
			if ext.GetSessionId() != cs.GetSession().GetSessionId() {
				t.Fatalf("B revoked %v, want A's session %s", ext, cs.GetSession().GetSessionId())
			}
		})
	}
}

// TestMutual: A and B receive from each other. A ban at A comes back to A
// as B's ban (a ban of the same user by the signal's actor), and the echo
// of that at B finds B's ban in force and bans nothing: the loop stops.
// The proof it stopped: a later ban at A (of zed) reaches B and comes back
// to A after the echoes (delivery is in order), and by then each side has
// exactly the bans of alice it had after the first round.
func TestMutual(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // hang guard
	defer cancel()
	bin := serveproc.Build(t)
	a, b := start(t, bin), start(t, bin)
	receive := func(at, from authority) string {
		key, err := from.admin.APIKeys.CreateAPIKey(ctx, &pb.CreateAPIKeyRequest{Name: "receiver", Scopes: []string{"signals"}})
		if err != nil {
			t.Fatal(err)
		}
		tx, err := at.admin.Signals.CreateTransmitter(ctx, &pb.CreateTransmitterRequest{
			ConfigUrl: "http://" + from.http, Audience: "http://" + at.http, BearerToken: key.GetSecret(), TenantId: "acme"})
		if err != nil {
			t.Fatalf("CreateTransmitter: %v", err)
		}
		return "ssf:" + tx.GetTransmitter().GetTransmitterId()
	}
	fromA, fromB := receive(b, a), receive(a, b) // the actors of the bans signals make at B and at A
	atA, atB := watch(ctx, t, a), watch(ctx, t, b)
	banBy := func(user, by string) func(*pb.Event) bool {
		return func(e *pb.Event) bool {
			return e.GetBanCreated().GetSubject().GetUserId() == user && e.GetBanCreated().GetCreatedBy() == by
		}
	}
	if _, err := a.admin.Bans.CreateBan(ctx, userBan("alice")); err != nil {
		t.Fatal(err)
	}
	atB.next("alice's ban at B", banBy("alice", fromA))
	atA.next("alice's ban coming back to A", banBy("alice", fromB))
	if _, err := a.admin.Bans.CreateBan(ctx, userBan("zed")); err != nil {
		t.Fatal(err)
	}
	atB.next("zed's ban at B", banBy("zed", fromA))
	atA.next("zed's ban coming back to A", banBy("zed", fromB))
	for _, c := range []struct {
		name string
		at   authority
		want int
	}{{"A", a, 2}, {"B", b, 1}} {
		resp, err := c.at.admin.Bans.ListBans(ctx, &pb.ListBansRequest{TenantId: "acme", State: pb.BanState_BAN_STATE_ACTIVE})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ban := range resp.GetBans() {
			if ban.GetSubject().GetUserId() == "alice" {
				n++
			}
		}
		if n != c.want {
			t.Errorf("%s: %d active bans of alice, want %d: %v", c.name, n, c.want, resp.GetBans())
		}
	}
}
