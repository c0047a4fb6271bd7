package fault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/server"
)

// failingStore fails every Update while a fault is set, the way a full or
// read-only disk fails a commit: the update function runs against the real
// transaction, then the commit fails, so bbolt rolls everything back.
type failingStore struct {
	storage.Store
	fault atomic.Pointer[error]
}

func (f *failingStore) Update(ctx context.Context, fn func(storage.Tx) error) (int64, error) {
	p := f.fault.Load()
	if p == nil {
		return f.Store.Update(ctx, fn)
	}
	_, err := f.Store.Update(ctx, func(tx storage.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return *p
	})
	return 0, err
}

// wantStorageError checks the error a client gets when a commit fails:
// Unavailable or Internal, with an ErrorInfo of domain portcullis.dev,
// never Unknown.
func wantStorageError(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded while the disk is failing", what)
	}
	st, _ := status.FromError(err)
	if c := st.Code(); c != codes.Internal && c != codes.Unavailable {
		t.Fatalf("%s: %v (code %v), want Internal or Unavailable", what, err, c)
	}
	var info *errdetails.ErrorInfo
	for _, d := range st.Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok {
			info = i
		}
	}
	if info == nil || info.GetDomain() != "portcullis.dev" || info.GetReason() == "" {
		t.Fatalf("%s: %v: no ErrorInfo of domain portcullis.dev (%v)", what, err, info)
	}
	if strings.Contains(st.Message(), "no space") || strings.Contains(st.Message(), "portcullis.db") {
		t.Errorf("%s: the status leaks the storage error: %q", what, st.Message())
	}
}

func headRevision(t *testing.T, e *env) int64 {
	t.Helper()
	var rev int64
	if err := e.bolt.View(context.Background(), func(tx storage.ReadTx) error { rev = tx.Revision(); return nil }); err != nil {
		t.Fatal(err)
	}
	return rev
}

func countBans(ctx context.Context, t *testing.T, c *client.Client) int {
	t.Helper()
	n := 0
	req := &pb.ListBansRequest{PageSize: 1000}
	for {
		resp, err := c.Bans.ListBans(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		n += len(resp.GetBans())
		if resp.GetNextPageToken() == "" {
			return n
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

func userBan(user, reason string) *pb.CreateBanRequest {
	return &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: user}}, Reason: reason}
}

// (a) The disk fails when a write commits (injected in the storage layer):
// the caller gets Internal/Unavailable with an ErrorInfo, nothing is half
// written, and writes work again once the fault clears.
func TestCommitFailsDiskFull(t *testing.T) {
	var fs *failingStore
	e := newEnv(t, envConfig{wrap: func(s storage.Store) storage.Store { fs = &failingStore{Store: s}; return fs }})
	c := e.dial()
	ctx := context.Background()

	if _, err := c.Bans.CreateBan(ctx, userBan("before", "")); err != nil {
		t.Fatal(err)
	}
	sess, err := c.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{UserId: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	rev0, bans0 := headRevision(t, e), countBans(ctx, t, c)

	for _, fault := range []error{
		fmt.Errorf("write portcullis.db: %w", syscall.ENOSPC),
		fmt.Errorf("write portcullis.db: %w", syscall.EROFS),
		fmt.Errorf("fdatasync portcullis.db: %w", syscall.EIO),
	} {
		fs.fault.Store(&fault)
		_, err := c.Bans.CreateBan(ctx, userBan("mallory", "disk full"))
		wantStorageError(t, fmt.Sprintf("CreateBan (%v)", fault), err)
		_, err = c.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{UserId: "bob"})
		wantStorageError(t, fmt.Sprintf("CreateSession (%v)", fault), err)
		_, err = c.Sessions.RefreshSession(ctx, &pb.RefreshSessionRequest{RefreshToken: sess.GetRefreshToken()})
		wantStorageError(t, fmt.Sprintf("RefreshSession (%v)", fault), err)
		_, err = c.Sessions.RevokeSession(ctx, &pb.RevokeSessionRequest{SessionId: sess.GetSession().GetSessionId()})
		wantStorageError(t, fmt.Sprintf("RevokeSession (%v)", fault), err)
	}
	fs.fault.Store(nil)

	// Nothing was half written: no revision, no ban, no session, no
	// rotation, no revocation.
	if rev := headRevision(t, e); rev != rev0 {
		t.Errorf("revision %d after failed writes, want %d", rev, rev0)
	}
	if n := countBans(ctx, t, c); n != bans0 {
		t.Errorf("%d bans after failed writes, want %d", n, bans0)
	}
	if resp, err := c.Sessions.ListSessions(ctx, &pb.ListSessionsRequest{TenantId: "public", UserId: "bob"}); err != nil || len(resp.GetSessions()) != 0 {
		t.Errorf("sessions of bob after a failed CreateSession: %v, %v", resp.GetSessions(), err)
	}

	// The fault clears: writes work, the refresh token from before the
	// fault is still the current one, revisions go on without a gap.
	if _, err := c.Bans.CreateBan(ctx, userBan("mallory", "disk fine")); err != nil {
		t.Fatal(err)
	}
	if rev := headRevision(t, e); rev != rev0+1 {
		t.Errorf("revision %d after the first write past the fault, want %d", rev, rev0+1)
	}
	if _, err := c.Sessions.RefreshSession(ctx, &pb.RefreshSessionRequest{RefreshToken: sess.GetRefreshToken()}); err != nil {
		t.Fatalf("the refresh token of before the fault: %v", err)
	}
	if _, err := c.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{UserId: "bob"}); err != nil {
		t.Fatal(err)
	}
}

// (a, real disk) The same on a real full filesystem: a 256 KiB tmpfs. It
// needs root (mount); otherwise it skips, and the injected variant above
// still runs.
func TestCommitFailsDiskFullTmpfs(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { // after the env's cleanup (LIFO): store closed, file checked
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount: %v %s", err, out)
		}
	})
	e := newEnv(t, envConfig{path: filepath.Join(dir, "portcullis.db")})
	c := e.dial()
	ctx := context.Background()
	reason := strings.Repeat("r", 1000)
	var acked []string
	var failure error
	for i := 0; i < 5000 && failure == nil; i++ {
		resp, err := c.Bans.CreateBan(ctx, userBan(fmt.Sprintf("u%d", i), reason))
		if err != nil {
			failure = err
			break
		}
		acked = append(acked, resp.GetBan().GetBanId())
	}
	if failure == nil {
		t.Fatal("5000 bans fit in a 256 KiB tmpfs")
	}
	t.Logf("disk full after %d bans: %v", len(acked), failure)
	wantStorageError(t, "CreateBan on a full disk", failure)
	rev := headRevision(t, e)
	_, err := c.Bans.CreateBan(ctx, userBan("again", reason))
	wantStorageError(t, "CreateBan on a still full disk", err)
	if r := headRevision(t, e); r != rev {
		t.Errorf("revision moved from %d to %d on a failed write", rev, r)
	}

	// Space comes back: writes work again, nothing acknowledged was lost.
	if out, err := exec.Command("mount", "-o", "remount,size=8m", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	if _, err := c.Bans.CreateBan(ctx, userBan("after", reason)); err != nil {
		t.Fatalf("CreateBan once space is back: %v", err)
	}
	for _, id := range acked {
		if _, err := c.Bans.GetBan(ctx, &pb.GetBanRequest{BanId: id}); err != nil {
			t.Fatalf("acknowledged ban %s: %v", id, err)
		}
	}
}

// (b) The authority unreachable for longer than the staleness bound:
// checks fail closed with ErrMirrorStale, and pass again once it is back.
// (client/resume_test.go covers the same over bufconn with a fake clock;
// this is the real thing over TCP.)
func TestMirrorFailsClosedWhileAuthorityDown(t *testing.T) {
	e := newEnv(t, envConfig{options: server.Options{CheckpointInterval: 50 * time.Millisecond}})
	c := e.dial()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := client.NewMirror(c, client.MirrorOptions{Logger: quiet, StaleAfter: 400 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if err := m.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	sess, err := c.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{UserId: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	tok := sess.GetAccessToken()
	waitFor(t, time.Minute, "the mirror to know the session's key", func() bool {
		_, err := m.Check(ctx, tok, client.CheckInput{})
		return err == nil
	})

	addr := e.addr
	e.stop()
	var stale error
	waitFor(t, time.Minute, "checks to fail closed", func() bool {
		_, stale = m.Check(ctx, tok, client.CheckInput{})
		return stale != nil
	})
	if !errors.Is(stale, client.ErrMirrorStale) {
		t.Fatalf("check while the authority is down: %v, want ErrMirrorStale", stale)
	}
	if code := status.Code(client.Status(stale)); code != codes.Unavailable {
		t.Errorf("stale check: as a status, code %v, want Unavailable", code)
	}

	e.serve(addr)
	waitFor(t, time.Minute, "checks to pass again", func() bool {
		_, err := m.Check(ctx, tok, client.CheckInput{})
		return err == nil
	})
	// And it follows the stream again: a ban reaches it.
	if _, err := c.Bans.CreateBan(ctx, userBan("alice", "")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the ban to reach the mirror", func() bool {
		_, err := m.Check(ctx, tok, client.CheckInput{})
		return errors.Is(err, client.ErrUserBanned)
	})
}

// rawConn is a plain gRPC connection with the given key, and the smallest
// flow-control windows gRPC allows, so a reader that stops fills them fast.
func rawConn(t *testing.T, addr, key string) (*grpc.ClientConn, context.Context) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+key)
}

// (c) A Watch subscriber that stops reading is cut off with
// SUBSCRIBER_TOO_SLOW, while writers and other subscribers go on.
// The send timeout is long enough that the reading subscriber, on a busy
// machine, is not cut off too; the stalled one is, whatever the timeout.
func TestSlowSubscriberCutOff(t *testing.T) {
	e := newEnv(t, envConfig{options: server.Options{SendTimeout: 2 * time.Second, CheckpointInterval: time.Second}})
	c := e.dial()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// A subscriber that keeps up.
	m := client.NewMirror(c, client.MirrorOptions{Logger: quiet})
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if err := m.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}

	// A subscriber that never reads, on its own connection.
	conn, sctx := rawConn(t, e.addr, e.key)
	sctx, scancel := context.WithCancel(sctx)
	defer scancel()
	slow, err := pb.NewEventServiceClient(conn).Watch(sctx, &pb.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}

	// Writers: enough ~1 KB events to fill the windows many times over.
	const writers, perWriter = 8, 250
	reason := strings.Repeat("x", 1000)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				if _, err := c.Bans.CreateBan(ctx, userBan(fmt.Sprintf("u-%d-%d", w, i), reason)); err != nil {
					failed.Add(1)
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d writes failed while a subscriber stalled", failed.Load())
	}
	head := headRevision(t, e)
	waitFor(t, 30*time.Second, "the server to cut the slow subscriber off", func() bool {
		return e.logs.count("too slow") > 0
	})
	waitFor(t, 30*time.Second, "the reading subscriber to reach the head", func() bool { return m.Revision() >= head })
	if st := m.Stats(); st.Connects != 1 || st.Resets != 1 {
		t.Errorf("the reading subscriber reconnected: %+v", st)
	}

	// The stalled stream, read at last: what was buffered, then the status.
	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer rcancel()
	go func() { <-rctx.Done(); scancel() }()
	var n int
	for {
		_, err := slow.Recv()
		if err == nil {
			n++
			continue
		}
		st, _ := status.FromError(err)
		if st.Code() != codes.ResourceExhausted || !strings.Contains(fmt.Sprint(st.Details()), "SUBSCRIBER_TOO_SLOW") {
			t.Fatalf("stalled stream ended with %v (details %v), want ResourceExhausted SUBSCRIBER_TOO_SLOW", err, st.Details())
		}
		break
	}
	if n >= writers*perWriter {
		t.Errorf("the stalled stream delivered all %d changes: it was never stalled", n)
	}
	t.Logf("stalled subscriber got %d of %d messages before the cut-off", n, writers*perWriter+1)
}

// (d) A client that opens thousands of Watch streams is bounded: beyond
// MaxWatchersPerKey they are refused with ResourceExhausted; beyond
// MaxConcurrentStreams on one connection they wait (gRPC's stream limit),
// and the authority keeps serving everyone else.
func TestManyStreamsBounded(t *testing.T) {
	const perKey, streams = 100, 2000
	e := newEnv(t, envConfig{options: server.Options{Limits: server.Limits{MaxWatchersPerKey: perKey, MaxConcurrentStreams: 600}}})
	c := e.dial()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	conns := make([]pb.EventServiceClient, 4) // 500 streams a connection
	var mdctx context.Context
	for i := range conns {
		conn, mctx := rawConn(t, e.addr, e.key)
		conns[i], mdctx = pb.NewEventServiceClient(conn), mctx
	}
	mdctx, mcancel := context.WithCancel(mdctx)
	defer mcancel()

	var ok, exhausted atomic.Int64
	var other sync.Map
	var wg sync.WaitGroup
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := conns[i%len(conns)].Watch(mdctx, &pb.WatchRequest{})
			if err == nil {
				_, err = s.Recv()
			}
			switch {
			case err == nil:
				ok.Add(1)
			case status.Code(err) == codes.ResourceExhausted:
				exhausted.Add(1)
			default:
				other.Store(err.Error(), true)
			}
		}()
	}
	wg.Wait()
	other.Range(func(k, _ any) bool { t.Errorf("stream: %v", k); return true })
	if ok.Load() != perKey || exhausted.Load() != streams-perKey {
		t.Fatalf("%d streams served, %d refused (ResourceExhausted), want %d and %d", ok.Load(), exhausted.Load(), perKey, streams-perKey)
	}
	// The authority still serves writes meanwhile.
	if _, err := c.Bans.CreateBan(ctx, userBan("mallory", "")); err != nil {
		t.Fatal(err)
	}
	mcancel()
	waitFor(t, time.Minute, "the open streams to be released", func() bool {
		s, err := conns[0].Watch(ctx2(t, e.key), &pb.WatchRequest{})
		if err != nil {
			return false
		}
		_, err = s.Recv()
		return err == nil
	})

	// One connection: MaxConcurrentStreams bounds the calls in flight; the
	// next one waits for a free stream instead of being served.
	e2 := newEnv(t, envConfig{options: server.Options{Limits: server.Limits{MaxConcurrentStreams: 50, MaxWatchersPerKey: -1}}})
	conn, kctx := rawConn(t, e2.addr, e2.key)
	ev := pb.NewEventServiceClient(conn)
	kctx, kcancel := context.WithCancel(kctx)
	defer kcancel()
	for i := range 50 {
		s, err := ev.Watch(kctx, &pb.WatchRequest{})
		if err == nil {
			_, err = s.Recv()
		}
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	wctx, wcancel := context.WithTimeout(kctx, 300*time.Millisecond)
	defer wcancel()
	if _, err := pb.NewBanServiceClient(conn).CreateBan(wctx, userBan("over", "")); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("a call beyond MaxConcurrentStreams on the connection: %v, want to wait (DeadlineExceeded)", err)
	}
	// Another connection is served.
	if _, err := e2.dial().Bans.CreateBan(context.Background(), userBan("other", "")); err != nil {
		t.Fatal(err)
	}
}

func ctx2(t *testing.T, key string) context.Context {
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+key), 2*time.Second)
	t.Cleanup(cancel)
	return ctx
}
