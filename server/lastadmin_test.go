package server_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd/etcdtest"
)

// TestLastAdminKey: revoking the last unrevoked, unexpired admin key is
// refused with FailedPrecondition / LAST_ADMIN_KEY, on bolt and on etcd
// (two replicas), and when every admin key revokes itself at once exactly
// one is refused: the check reads the keys in the revoking transaction.
func TestLastAdminKey(t *testing.T) {
	t.Run("bolt", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		testLastAdminKey(t, e.clock, e.adminKey, []pb.APIKeyServiceClient{e.apiKeys}, e.audit)
	})
	t.Run("etcd", func(t *testing.T) {
		m := etcdtest.Start(t, etcdtest.Config{UnsafeNoFsync: true})
		clock := &testClock{now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
		rs, admin := bootstrapReplicas(t, 2, clock.Now, m)
		var apiKeys []pb.APIKeyServiceClient
		for _, r := range rs {
			apiKeys = append(apiKeys, pb.NewAPIKeyServiceClient(r.conn))
		}
		testLastAdminKey(t, clock, admin, apiKeys, pb.NewAuditServiceClient(rs[1].conn))
	})
}

// testLastAdminKey runs the scenario through the API of one authority or
// of several replicas of one (apiKeys, one client each; calls alternate).
func testLastAdminKey(t *testing.T, clock *testClock, admin string, apiKeys []pb.APIKeyServiceClient, audit pb.AuditServiceClient) {
	via := func(i int) pb.APIKeyServiceClient { return apiKeys[i%len(apiKeys)] }
	keyID := func(name string) string {
		t.Helper()
		list, err := via(0).ListAPIKeys(as(admin), &pb.ListAPIKeysRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range list.GetApiKeys() {
			if k.GetName() == name {
				return k.GetApiKeyId()
			}
		}
		t.Fatalf("no API key named %q", name)
		return ""
	}
	bootstrap := keyID(authority.BootstrapKeyName)

	// The bootstrap key revoking itself, the lock-out of the issue.
	for i := range apiKeys {
		_, err := via(i).RevokeAPIKey(as(admin), &pb.RevokeAPIKeyRequest{ApiKeyId: bootstrap})
		wantStatus(t, err, codes.FailedPrecondition, "LAST_ADMIN_KEY")
		if msg := status.Convert(err).Message(); !strings.Contains(msg, "create another admin key first") {
			t.Fatalf("refusal message %q does not say what to do", msg)
		}
	}

	// Neither an expired admin key nor a key with every other scope
	// counts.
	all := []string{}
	for _, s := range authority.AllScopes {
		if s != authority.ScopeAdmin {
			all = append(all, s)
		}
	}
	if _, err := via(0).CreateAPIKey(as(admin), &pb.CreateAPIKeyRequest{Name: "everything-but-admin", Scopes: all}); err != nil {
		t.Fatal(err)
	}
	if _, err := via(1).CreateAPIKey(as(admin), &pb.CreateAPIKeyRequest{Name: "short-lived-admin", Scopes: []string{authority.ScopeAdmin},
		ExpireTime: timestamppb.New(clock.Now().Add(time.Minute))}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	_, err := via(1).RevokeAPIKey(as(admin), &pb.RevokeAPIKeyRequest{ApiKeyId: bootstrap})
	wantStatus(t, err, codes.FailedPrecondition, "LAST_ADMIN_KEY")
	// An expired admin key is no admin key: revoking it is allowed.
	if _, err := via(0).RevokeAPIKey(as(admin), &pb.RevokeAPIKeyRequest{ApiKeyId: keyID("short-lived-admin")}); err != nil {
		t.Fatalf("revoking an expired admin key: %v", err)
	}

	// Every admin key revokes itself, all at once, through alternating
	// replicas: whatever the order, all but one commit.
	secrets := []string{admin}
	ids := []string{bootstrap}
	for i := range 5 {
		resp, err := via(i).CreateAPIKey(as(admin), &pb.CreateAPIKeyRequest{Name: "ops-" + string(rune('a'+i)), Scopes: []string{authority.ScopeAdmin}})
		if err != nil {
			t.Fatal(err)
		}
		secrets, ids = append(secrets, resp.GetSecret()), append(ids, resp.GetApiKey().GetApiKeyId())
	}
	errs := make([]error, len(secrets))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range secrets {
		wg.Go(func() {
			<-start
			_, errs[i] = via(i).RevokeAPIKey(as(secrets[i]), &pb.RevokeAPIKeyRequest{ApiKeyId: ids[i]})
		})
	}
	close(start)
	wg.Wait()
	survivor := -1
	for i, err := range errs {
		if err == nil {
			continue
		}
		wantStatus(t, err, codes.FailedPrecondition, "LAST_ADMIN_KEY")
		if survivor >= 0 {
			t.Fatalf("keys %d and %d were both refused as the last admin key", survivor, i)
		}
		survivor = i
	}
	if survivor < 0 {
		t.Fatal("every admin key revoked itself: the store has no admin key left")
	}
	// The survivor still works, and is the only usable admin key.
	list, err := via(1).ListAPIKeys(as(secrets[survivor]), &pb.ListAPIKeysRequest{})
	if err != nil {
		t.Fatalf("the last admin key no longer works: %v", err)
	}
	var usable []string
	for _, k := range list.GetApiKeys() {
		if k.GetRevokeTime() == nil && (k.GetExpireTime() == nil || clock.Now().Before(k.GetExpireTime().AsTime())) &&
			slices.Contains(k.GetScopes(), authority.ScopeAdmin) {
			usable = append(usable, k.GetApiKeyId())
		}
	}
	if len(usable) != 1 || usable[0] != ids[survivor] {
		t.Fatalf("usable admin keys %v, want only %s", usable, ids[survivor])
	}
	// Refusals write nothing: one apikey.revoke record per revocation.
	recs, err := audit.ListAuditRecords(as(secrets[survivor]), &pb.ListAuditRecordsRequest{Action: "apikey.revoke"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(recs.GetRecords()); n != len(secrets) { // the short-lived key and all but one of secrets
		t.Fatalf("%d apikey.revoke audit records, want %d", n, len(secrets))
	}
}

// pausingStore holds the first run of the first Update function after it
// ran (its reads done, its writes buffered) until resume is closed, so
// that a test can commit a conflicting write in between.
type pausingStore struct {
	storage.Store
	runs   atomic.Int32
	paused chan struct{}
	resume chan struct{}
}

func (s *pausingStore) Update(ctx context.Context, fn func(storage.Tx) error) (int64, error) {
	return s.Store.Update(ctx, func(tx storage.Tx) error {
		err := fn(tx)
		if s.runs.Add(1) == 1 {
			close(s.paused)
			<-s.resume
		}
		return err
	})
}

// TestLastAdminKeyEtcdRace: on etcd, two replicas each revoke one of the
// two admin keys, interleaved so that each reads the other's key as
// usable: the one that commits second must run again and refuse, as
// neither check alone sees the other's revocation.
func TestLastAdminKeyEtcdRace(t *testing.T) {
	m := etcdtest.Start(t, etcdtest.Config{UnsafeNoFsync: true})
	prefix := etcdtest.NewPrefix()
	ctx := context.Background()
	paused := &pausingStore{paused: make(chan struct{}), resume: make(chan struct{})}
	paused.Store = etcdtest.Open(t, etcd.Options{Prefix: prefix}, m)
	other := authority.New(etcdtest.Open(t, etcd.Options{Prefix: prefix}, m), authority.Config{})
	if _, err := other.EnsureBootstrapKey(ctx); err != nil {
		t.Fatal(err)
	}
	second, _, err := other.CreateAPIKey(ctx, authority.System, "ops", []string{authority.ScopeAdmin}, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := other.ListAPIKeys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("ListAPIKeys: %v, %v", keys, err)
	}
	first := keys[0]
	if first.ID == second.ID {
		first = keys[1]
	}

	done := make(chan error, 1)
	go func() {
		_, err := authority.New(paused, authority.Config{}).RevokeAPIKey(ctx, authority.System, first.ID)
		done <- err
	}()
	select {
	case <-paused.paused:
	case <-time.After(time.Minute): // hang guard
		t.Fatal("the first revocation never ran")
	}
	// The first revocation has read both keys usable; the second commits
	// before it.
	if _, err := other.RevokeAPIKey(ctx, authority.System, second.ID); err != nil {
		t.Fatalf("revoking the second admin key while the first is still usable: %v", err)
	}
	close(paused.resume)
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the first revocation never returned")
	}
	if !errors.Is(err, authority.ErrLastAdminKey) {
		t.Fatalf("the racing revocation returned %v, want ErrLastAdminKey", err)
	}
	if n := paused.runs.Load(); n < 2 {
		t.Fatalf("the racing revocation's function ran %d times; etcd should have run it again", n)
	}
	if keys, err = other.ListAPIKeys(ctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.ID == first.ID && !k.RevokeTime.IsZero() {
			t.Fatal("both admin keys are revoked")
		}
	}
}
