package server_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

// conflictingStore fails every Update while armed the way etcd's store
// does when concurrent writers win every retry (its ErrTooManyAttempts,
// proven to be storage.ErrConflict against a real etcd in
// internal/storage/etcd): without running the function, so nothing is
// written.
type conflictingStore struct {
	storage.Store
	armed atomic.Bool
}

func (s *conflictingStore) Update(ctx context.Context, fn func(storage.Tx) error) (int64, error) {
	if s.armed.Load() {
		return 0, fmt.Errorf("%w: storage/etcd: update gave up: concurrent writers kept changing what it read (64 attempts)", storage.ErrConflict)
	}
	return s.Store.Update(ctx, fn)
}

// A write that lost every race answers Aborted with reason CONFLICT, and
// the same call succeeds when retried.
func TestConflictIsAborted(t *testing.T) {
	cs := &conflictingStore{}
	e := newEnv(t, envOptions{wrap: func(s storage.Store) storage.Store { cs.Store = s; return cs }})
	req := &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "mallory"}}, Reason: "spam"}
	before := e.dump()
	cs.armed.Store(true)
	_, err := e.bans.CreateBan(e.admin(), req)
	wantStatus(t, err, codes.Aborted, "CONFLICT")
	if after := e.dump(); after != before {
		t.Errorf("a conflicting CreateBan changed the store")
	}
	cs.armed.Store(false)
	if _, err := e.bans.CreateBan(e.admin(), req); err != nil {
		t.Fatalf("CreateBan retried after a conflict: %v", err)
	}
}
