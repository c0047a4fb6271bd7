package client_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/token"
)

// refBan is a ban of the reference model.
type refBan struct {
	id, tenant, kind, value string
	caps                    []string
	expire                  time.Time
}

func (b refBan) activeAt(t time.Time) bool { return b.expire.IsZero() || t.Before(b.expire) }

func (b refBan) lastsLonger(o refBan) bool {
	switch {
	case b.expire.IsZero():
		return !o.expire.IsZero()
	case o.expire.IsZero():
		return false
	}
	return b.expire.After(o.expire)
}

// refCheck is the authority's refusal (internal/authority/match.go,
// VerifySession) over a plain list: the model the mirror must agree with.
func refCheck(bans []refBan, revoked map[string]time.Time, now time.Time, tenant, user, device, device2, sid string, ip netip.Addr, capability string) (reason, banID string) {
	slices.SortFunc(bans, func(a, b refBan) int {
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	var full, restricted *refBan
	var fullKind string
	visit := func(kind, value string) {
		for _, t := range []string{tenant, "*"} {
			for i := range bans {
				b := &bans[i]
				if b.tenant != t || b.kind != kind || b.value != value || !b.activeAt(now) {
					continue
				}
				switch {
				case len(b.caps) == 0:
					if full == nil || (fullKind == kind && b.lastsLonger(*full)) {
						full, fullKind = b, kind
					}
				case capability != "" && slices.Contains(b.caps, capability):
					if restricted == nil || b.lastsLonger(*restricted) {
						restricted = b
					}
				}
			}
		}
	}
	visit("user", user)
	if device != "" {
		visit("device", device)
	}
	if device2 != "" && device2 != device {
		visit("device", device2)
	}
	if ip.IsValid() {
		for l := ip.BitLen(); l >= 1; l-- {
			p, _ := ip.Prefix(l)
			visit("ip", p.String())
		}
	}
	switch {
	case full != nil:
		return map[string]string{"user": "USER_BANNED", "device": "DEVICE_BANNED", "ip": "IP_BANNED"}[fullKind], full.id
	case now.Before(revoked[sid]):
		return "SESSION_REVOKED", ""
	case restricted != nil:
		return "CAPABILITY_RESTRICTED", restricted.id
	}
	return "", ""
}

// TestMirrorMatchesModel applies random bans, lifts and revocations to a
// mirror and checks random requests against the reference model, with the
// clock moving so that temporary bans expire and prunes run.
func TestMirrorMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	clock := newClock()
	start := clock.Now()
	key := benchKey
	snap := &pb.Snapshot{Keys: []*pb.VerificationKey{{KeyId: "k", Algorithm: "EdDSA", PublicKey: key.Public().(ed25519.PublicKey)}}}
	m := client.NewTestMirror("s", 1, snap, client.MirrorOptions{Clock: clock.Now, StaleAfter: 1000 * time.Hour, CacheSize: 8})

	tenants := []string{"public", "t1", "*"}
	users := []string{"u1", "u2", "u3", "u4", "u5", "u6"}
	devices := []string{"d1", "d2", "d3"}
	caps := []string{"post", "comment"}
	randIP := func() netip.Prefix {
		if rng.IntN(2) == 0 {
			a := netip.AddrFrom4([4]byte{10, byte(rng.IntN(2)), byte(rng.IntN(2)), byte(rng.IntN(4))})
			return netip.PrefixFrom(a, []int{8, 16, 23, 24, 30, 32}[rng.IntN(6)]).Masked()
		}
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(rng.IntN(2)), 0, 0, byte(rng.IntN(2)), 0, 0, 0, 0, 0, 0, byte(rng.IntN(3))})
		return netip.PrefixFrom(a, []int{32, 40, 48, 56, 64, 65, 96, 127, 128}[rng.IntN(9)]).Masked()
	}
	var bans []refBan
	revoked := map[string]time.Time{}
	rev := int64(1)
	seq := 0
	apply := func(events ...*pb.Event) {
		rev++
		if err := m.Apply(&pb.WatchResponse{StoreId: "s", Revision: rev, Payload: &pb.WatchResponse_Change{Change: &pb.Change{Events: events}}}); err != nil {
			t.Fatal(err)
		}
	}
	tokens := map[string]string{}
	tokenFor := func(tenant, user, device, sid string) string {
		k := tenant + "/" + user + "/" + device + "/" + sid
		if tok, ok := tokens[k]; ok {
			return tok
		}
		tok, err := token.Sign(&token.Claims{SessionID: sid, TenantID: tenant, DeviceID: device,
			RegisteredClaims: jwt.RegisteredClaims{Issuer: "portcullis", Subject: user, Audience: jwt.ClaimStrings{"portcullis"},
				IssuedAt: jwt.NewNumericDate(start), ExpiresAt: jwt.NewNumericDate(start.Add(1000 * time.Hour))}}, "k", key)
		if err != nil {
			t.Fatal(err)
		}
		tokens[k] = tok
		return tok
	}

	seen := map[string]int{}
	for step := range 3000 {
		switch op := rng.IntN(10); {
		case op < 3 && len(bans) < 8: // create a ban
			seq++
			b := refBan{id: synthID("ban_", seq), tenant: tenants[rng.IntN(3)]}
			if seq%7 == 0 {
				b.id = fmt.Sprintf("custom-%d", seq) // not the authority's ID form
			}
			subject := &pb.Subject{}
			switch rng.IntN(3) {
			case 0:
				b.kind, b.value = "user", users[rng.IntN(len(users))]
				subject.Kind = &pb.Subject_UserId{UserId: b.value}
			case 1:
				b.kind, b.value = "device", devices[rng.IntN(len(devices))]
				subject.Kind = &pb.Subject_DeviceId{DeviceId: b.value}
			default:
				b.kind, b.value = "ip", randIP().String()
				subject.Kind = &pb.Subject_Ip{Ip: b.value}
			}
			if rng.IntN(3) == 0 {
				b.caps = []string{caps[rng.IntN(2)]}
			}
			pbBan := &pb.Ban{BanId: b.id, TenantId: b.tenant, Subject: subject, Capabilities: b.caps}
			if rng.IntN(2) == 0 {
				b.expire = clock.Now().Add(time.Duration(rng.IntN(120)) * time.Second)
				pbBan.ExpireTime = timestamppb.New(b.expire)
			}
			bans = append(bans, b)
			apply(&pb.Event{Kind: &pb.Event_BanCreated{BanCreated: pbBan}})
		case op < 5 && len(bans) > 0, op < 3: // lift one
			i := rng.IntN(len(bans))
			b := bans[i]
			bans = slices.Delete(bans, i, i+1)
			subject := &pb.Subject{}
			switch b.kind {
			case "user":
				subject.Kind = &pb.Subject_UserId{UserId: b.value}
			case "device":
				subject.Kind = &pb.Subject_DeviceId{DeviceId: b.value}
			default:
				subject.Kind = &pb.Subject_Ip{Ip: b.value}
			}
			apply(&pb.Event{Kind: &pb.Event_BanLifted{BanLifted: &pb.Ban{BanId: b.id, TenantId: b.tenant, Subject: subject}}})
		case op < 6: // revoke a session
			sid := fmt.Sprintf("ses_%d", rng.IntN(6))
			until := clock.Now().Add(time.Duration(rng.IntN(90)) * time.Second)
			revoked[sid] = until
			apply(&pb.Event{Kind: &pb.Event_SessionRevoked{SessionRevoked: &pb.RevokedSession{SessionId: sid, AccessExpireTime: timestamppb.New(until)}}})
		case op < 7:
			clock.Advance(time.Duration(rng.IntN(20)) * time.Second)
			if rng.IntN(3) == 0 {
				m.Prune()
			}
		}
		// Check a few random requests.
		for range 3 {
			tenant, user := tenants[rng.IntN(2)], users[rng.IntN(len(users))]
			device, device2 := "", ""
			if rng.IntN(2) == 0 {
				device = devices[rng.IntN(len(devices))]
			}
			if rng.IntN(3) == 0 {
				device2 = devices[rng.IntN(len(devices))]
			}
			sid := fmt.Sprintf("ses_%d", rng.IntN(6))
			var ip netip.Addr
			if rng.IntN(4) != 0 {
				p := randIP()
				ip = p.Addr()
				if rng.IntN(2) == 0 && ip.Is4() {
					ip = netip.AddrFrom16(ip.As16()) // IPv4-mapped: checked as IPv4
				}
			}
			capability := ""
			if rng.IntN(2) == 0 {
				capability = caps[rng.IntN(2)]
			}
			now := clock.Now()
			wantReason, wantID := refCheck(slices.Clone(bans), revoked, now, tenant, user, device, device2, sid, ip.Unmap(), capability)
			_, err := m.Check(context.Background(), tokenFor(tenant, user, device, sid), client.CheckInput{ClientIP: ip, DeviceID: device2, Capability: capability})
			gotReason, gotID := "", ""
			var be *client.BanError
			switch {
			case errors.As(err, &be):
				gotReason, gotID = be.Reason.String(), be.BanID
			case errors.Is(err, client.ErrSessionRevoked):
				gotReason = "SESSION_REVOKED"
			case err != nil:
				t.Fatalf("step %d: %v", step, err)
			}
			seen[gotReason]++ // (counted to prove the model is exercised)
			if gotReason != wantReason || gotID != wantID {
				t.Fatalf("step %d: tenant %s user %s device %q/%q sid %s ip %v cap %q: mirror %s %s, model %s %s",
					step, tenant, user, device, device2, sid, ip, capability, gotReason, gotID, wantReason, wantID)
			}
		}
	}
	t.Logf("outcomes: %v", seen)
	// Every outcome happened, often.
	for _, r := range []string{"", "USER_BANNED", "DEVICE_BANNED", "IP_BANNED", "SESSION_REVOKED", "CAPABILITY_RESTRICTED"} {
		if seen[r] < 50 {
			t.Errorf("outcome %q seen %d times: %v", r, seen[r], seen)
		}
	}
	var want, got []string
	for _, b := range bans {
		if b.activeAt(clock.Now()) {
			want = append(want, b.id)
		}
	}
	for _, h := range m.HeldBans(clock.Now()) {
		got = append(got, h.BanID)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("mirror holds %v, model %v", got, want)
	}
}
