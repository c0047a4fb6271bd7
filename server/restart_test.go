package server_test

import (
	"encoding/json"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

// close stops e the way the binary does on SIGTERM: the client connection,
// the server's streams, the gRPC server, then the store, so that another
// env can open the same file. The test's cleanups repeat these harmlessly.
func (e *env) close() {
	e.t.Helper()
	e.conn.Close()
	e.srv.Shutdown()
	e.grpc.Stop()
	if err := e.store.Close(); err != nil {
		e.t.Fatalf("close store: %v", err)
	}
}

// dumped is e.dump() parsed back.
type dumped struct {
	Revision int64
	Sessions []storage.Session
	Bans     []storage.Ban
	Audit    []storage.AuditRecord
	APIKeys  []storage.APIKey
	Keys     []storage.SigningKey
}

func parseDump(t testing.TB, s string) (d dumped, parts map[string]json.RawMessage) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(s), &parts); err != nil {
		t.Fatal(err)
	}
	return d, parts
}

// TestRestartKeepsEverything: sessions, bans, keys, audit records, the
// store_id and the revision survive closing and reopening the file; an
// old access token still verifies, the next change gets a later revision,
// and a Watch resuming from the old revision needs no reset.
func TestRestartKeepsEverything(t *testing.T) {
	e1 := newEnv(t, envOptions{})
	ctx := e1.admin()
	s1 := e1.login(&pb.CreateSessionRequest{UserId: "alice", ClientIp: "203.0.113.7", Attributes: map[string]string{"app": "web"}})
	s2 := e1.login(&pb.CreateSessionRequest{UserId: "bob", DeviceId: "d1", TenantId: "t1"})
	s3 := e1.login(&pb.CreateSessionRequest{UserId: "carol"})
	e1.revokeSession(s3.GetSession().GetSessionId())
	active := e1.ban(&pb.CreateBanRequest{Subject: userSubject("mallory"), Duration: "7d", Reason: "spam", Policy: "tos-4.2"}).GetBan()
	capBan := e1.ban(&pb.CreateBanRequest{Subject: userSubject("alice"), Capabilities: []string{"post"}}).GetBan()
	lifted := e1.lift(e1.ban(&pb.CreateBanRequest{Subject: ipSubject("2001:db8::/32"), TenantId: "*"}).GetBan().GetBanId())
	oldKeys, err := e1.keys.ListKeys(ctx, &pb.ListKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	rot, err := e1.keys.RotateKey(ctx, &pb.RotateKeyRequest{Reason: "scheduled"})
	if err != nil {
		t.Fatal(err)
	}
	if rot.GetRetiredKey().GetKeyId() != oldKeys.GetKeys()[0].GetKeyId() {
		t.Fatalf("rotation retired %s, want %s", rot.GetRetiredKey().GetKeyId(), oldKeys.GetKeys()[0].GetKeyId())
	}
	// A token signed by the new key, too.
	s4 := e1.login(&pb.CreateSessionRequest{UserId: "dave"})

	rev, storeID := e1.revision(), e1.store.StoreID()
	before := e1.dump()
	audit1, err := e1.audit.ListAuditRecords(ctx, &pb.ListAuditRecordsRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	e1.close()

	e2 := newEnv(t, envOptions{path: e1.path, clock: e1.clock})
	ctx = e2.admin()
	if got := e2.store.StoreID(); got != storeID {
		t.Fatalf("store_id after reopen %q, want %q", got, storeID)
	}
	if got := e2.revision(); got != rev {
		t.Fatalf("revision after reopen %d, want %d", got, rev)
	}

	// The whole store is as it was, plus the admin key the harness creates
	// on a reopened store (and its audit record).
	after := e2.dump()
	bd, bp := parseDump(t, before)
	ad, ap := parseDump(t, after)
	for _, k := range []string{"Revision", "Sessions", "Bans", "Keys"} {
		if string(ap[k]) != string(bp[k]) {
			t.Errorf("%s changed across the restart:\n%s", k, lineDiff(string(bp[k]), string(ap[k])))
		}
	}
	if len(ad.APIKeys) != len(bd.APIKeys)+1 || len(ad.Audit) != len(bd.Audit)+1 {
		t.Errorf("after the restart %d API keys and %d audit records, want %d and %d",
			len(ad.APIKeys), len(ad.Audit), len(bd.APIKeys)+1, len(bd.Audit)+1)
	}
	for _, old := range bd.Audit {
		if !slices.ContainsFunc(ad.Audit, func(r storage.AuditRecord) bool {
			b1, _ := json.Marshal(r)
			b2, _ := json.Marshal(old)
			return string(b1) == string(b2)
		}) {
			t.Errorf("audit record %+v lost or changed", old)
		}
	}

	// Through the API.
	for _, s := range []*pb.CreateSessionResponse{s1, s2, s3, s4} {
		got, err := e2.sessions.GetSession(ctx, &pb.GetSessionRequest{SessionId: s.GetSession().GetSessionId()})
		if err != nil {
			t.Fatalf("GetSession(%s) after restart: %v", s.GetSession().GetSessionId(), err)
		}
		if got.GetSession().GetUserId() != s.GetSession().GetUserId() || got.GetSession().GetTenantId() != s.GetSession().GetTenantId() {
			t.Errorf("session after restart %v, want %v", got.GetSession(), s.GetSession())
		}
	}
	if got, _ := e2.sessions.GetSession(ctx, &pb.GetSessionRequest{SessionId: s1.GetSession().GetSessionId()}); got.GetSession().GetClientIp() != "203.0.113.7" ||
		got.GetSession().GetAttributes()["app"] != "web" {
		t.Errorf("session %v lost its client_ip or attributes", got.GetSession())
	}
	for want, state := range map[*pb.Ban]pb.BanState{active: pb.BanState_BAN_STATE_ACTIVE, capBan: pb.BanState_BAN_STATE_ACTIVE, lifted: pb.BanState_BAN_STATE_LIFTED} {
		got, err := e2.bans.GetBan(ctx, &pb.GetBanRequest{BanId: want.GetBanId()})
		if err != nil {
			t.Fatalf("GetBan(%s) after restart: %v", want.GetBanId(), err)
		}
		if got.GetBan().GetState() != state || got.GetBan().GetReason() != want.GetReason() || !got.GetBan().GetExpireTime().AsTime().Equal(want.GetExpireTime().AsTime()) {
			t.Errorf("ban after restart %v, want %v in state %v", got.GetBan(), want, state)
		}
	}
	if cb, err := e2.bans.CheckBan(ctx, &pb.CheckBanRequest{UserId: "mallory"}); err != nil || !cb.GetBanned() {
		t.Errorf("CheckBan(mallory) after restart: %v, %v; want banned", cb, err)
	}

	keys, err := e2.keys.ListKeys(ctx, &pb.ListKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var keyIDs []string
	for _, k := range keys.GetKeys() {
		keyIDs = append(keyIDs, k.GetKeyId())
	}
	if want := []string{rot.GetKey().GetKeyId(), rot.GetRetiredKey().GetKeyId()}; !slices.Equal(keyIDs, want) {
		t.Fatalf("keys after restart %v, want the new key then the retired one %v", keyIDs, want)
	}
	// Tokens signed before the restart, by the retired and the current key,
	// still verify; a revoked session's token is still refused.
	for _, s := range []*pb.CreateSessionResponse{s1, s4} {
		if _, err := e2.sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: s.GetAccessToken()}); err != nil {
			t.Errorf("VerifySession(%s's old token) after restart: %v", s.GetSession().GetUserId(), err)
		}
	}
	_, err = e2.sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: s3.GetAccessToken()})
	wantStatus(t, err, codes.Unauthenticated, "SESSION_REVOKED")
	// A refresh token from before the restart still rotates.
	if _, err := e2.sessions.RefreshSession(ctx, &pb.RefreshSessionRequest{RefreshToken: s2.GetRefreshToken()}); err != nil {
		t.Errorf("RefreshSession with a token from before the restart: %v", err)
	}

	audit2, err := e2.audit.ListAuditRecords(ctx, &pb.ListAuditRecordsRequest{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range audit1.GetRecords() {
		if !slices.ContainsFunc(audit2.GetRecords(), func(x *pb.AuditRecord) bool { return x.GetAuditId() == r.GetAuditId() }) {
			t.Errorf("audit record %s (%s) missing after restart", r.GetAuditId(), r.GetAction())
		}
	}

	// Resume the event stream from the old revision: no reset, the next
	// change is the first write after the restart, at a later revision.
	w := e2.watch(t, nil, &pb.WatchRequest{AfterRevision: rev, StoreId: storeID})
	nb := e2.ban(&pb.CreateBanRequest{Subject: userSubject("after-restart")}).GetBan()
	if got := e2.revision(); got <= rev {
		t.Fatalf("revision after a write %d, want more than %d", got, rev)
	}
	msg := w.recvSkippingCheckpoints(rev)
	if msg.GetSnapshot() != nil {
		t.Fatal("resuming from the pre-restart revision began with a reset snapshot")
	}
	if msg.GetRevision() != rev+1 || oneEvent(t, msg).GetBanCreated().GetBanId() != nb.GetBanId() {
		t.Fatalf("got %v, want the new ban at revision %d", msg, rev+1)
	}
}
