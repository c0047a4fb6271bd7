package crash

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/test/serveproc"
)

// envInt reads a positive integer from the environment, or def.
func envInt(t *testing.T, name string, def int64) int64 {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a non-negative integer", name, v)
	}
	return n
}

// fastReconnect makes a client reconnect within ~100 ms of the authority's
// restart (the default backoff grows to seconds, which would only make the
// suite slower).
var fastReconnect = grpc.WithConnectParams(grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 100 * time.Millisecond},
	MinConnectTimeout: time.Second,
})

// ledger is what the writers were told: only acknowledged writes are in it.
type ledger struct {
	mu       sync.Mutex
	bans     map[string]string   // ban id -> banned user
	sessions map[string]*session // session id -> session
	acks     atomic.Int64
	// unexpected collects errors other than "the authority is down".
	unexpected []error
}

type session struct {
	id string
	// refresh is the latest refresh token acknowledged for the session.
	refresh string
	// uncertain: a refresh of this session failed without an answer, so
	// the authority may have rotated the token (committed, then killed
	// before replying). The last acknowledged token may then be
	// superseded by one nobody was told about; presenting it would be
	// reuse. Such sessions are checked for presence only.
	uncertain bool
}

func (l *ledger) fail(err error) {
	l.mu.Lock()
	l.unexpected = append(l.unexpected, err)
	l.mu.Unlock()
}

// downErr reports whether err is what a call gets when the authority is
// killed or not yet back: Unavailable, or a deadline.
func downErr(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return errors.Is(err, client.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// TestCrashKill9 is the crash suite: SIGKILL at random moments while
// writers run, restart on the same data directory, and check that nothing
// acknowledged was lost and that the event log is whole.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("crash suite: -short")
	}
	cycles := int(envInt(t, "PORTCULLIS_CRASH_CYCLES", 10))
	seed := uint64(envInt(t, "PORTCULLIS_CRASH_SEED", time.Now().UnixNano()&(1<<62-1)))
	t.Logf("cycles=%d seed=%d (PORTCULLIS_CRASH_CYCLES, PORTCULLIS_CRASH_SEED)", cycles, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	bin := serveproc.Build(t)
	data := filepath.Join(t.TempDir(), "data")
	dbPath := filepath.Join(data, "portcullis.db")
	addr := serveproc.FreeAddr(t)
	args := []string{
		"--listen", addr, "--http-listen", "", "--data", data, "--log-level", "info",
		"--checkpoint-interval", "200ms",
		// The writers are one API key and one IP: lift the abuse limits.
		"--refresh-rate", "-1", "--create-session-rate", "-1",
	}

	auth := serveproc.Start(t, bin, args...)
	defer func() { auth.Kill() }()
	keyBytes, err := os.ReadFile(filepath.Join(data, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(keyBytes))

	c, err := client.Dial(addr, client.WithAPIKey(key), client.WithInsecure(), client.WithDialOptions(fastReconnect))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// The mirror follows the whole run, across every kill.
	var (
		mirror     *client.Mirror
		mirrorMu   sync.Mutex
		seenRevs   []int64 // revision of each change, in the order applied
		mirrorBans = map[string]bool{}
	)
	mirror = client.NewMirror(c, client.MirrorOptions{
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		StaleAfter: time.Hour,
		Logger:     slog.New(slog.DiscardHandler), // reconnections are the point here
		OnEvent: func(e *pb.Event) {
			rev := mirror.Revision() // the state that includes e is in place
			mirrorMu.Lock()
			defer mirrorMu.Unlock()
			if n := len(seenRevs); n == 0 || seenRevs[n-1] != rev {
				seenRevs = append(seenRevs, rev)
			}
			switch k := e.GetKind().(type) {
			case *pb.Event_BanCreated:
				mirrorBans[k.BanCreated.GetBanId()] = true
			case *pb.Event_BanLifted:
				delete(mirrorBans, k.BanLifted.GetBanId())
			}
		},
	})
	mctx, mcancel := context.WithCancel(context.Background())
	mdone := make(chan struct{})
	go func() { mirror.Run(mctx); close(mdone) }()
	defer func() { mcancel(); <-mdone }()
	{
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := mirror.WaitSynced(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	firstRev := mirror.Revision()
	storeID := mirror.Stats().StoreID

	// up is closed while the authority serves; writers that fail wait on it.
	var up atomic.Pointer[chan struct{}]
	ch := make(chan struct{})
	close(ch)
	up.Store(&ch)

	led := &ledger{bans: map[string]string{}, sessions: map[string]*session{}}
	wctx, wcancel := context.WithCancel(context.Background())
	var writers sync.WaitGroup
	const nWriters = 4
	for g := range nWriters {
		writers.Add(1)
		go func() {
			defer writers.Done()
			runWriter(wctx, c, led, &up, g, rand.New(rand.NewPCG(seed, uint64(g+1))))
		}()
	}

	for cycle := range cycles {
		delay := time.Duration(100+rng.IntN(900)) * time.Millisecond
		before := led.acks.Load()
		timer := time.NewTimer(delay) // the fault injection: kill at a random moment
		<-timer.C
		down := make(chan struct{})
		up.Store(&down)
		auth.Kill()
		if err := bolt.Check(dbPath); err != nil {
			t.Fatalf("cycle %d: bolt.Check after SIGKILL: %v", cycle, err)
		}
		auth = serveproc.Start(t, bin, args...)
		close(down)
		t.Logf("cycle %d: killed after %v, %d writes acknowledged in the cycle", cycle, delay, led.acks.Load()-before)
	}
	// A last stretch of writes on the final authority, then stop.
	{
		target := led.acks.Load() + 50
		waitFor(t, 30*time.Second, "writes on the final authority", func() bool { return led.acks.Load() >= target })
	}
	wcancel()
	writers.Wait()

	led.mu.Lock()
	defer led.mu.Unlock()
	for _, err := range led.unexpected {
		t.Errorf("writer: unexpected error: %v", err)
	}
	t.Logf("acknowledged: %d bans, %d sessions (%d with an unanswered refresh), %d writes in all",
		len(led.bans), len(led.sessions), countUncertain(led), led.acks.Load())
	if len(led.bans) == 0 || len(led.sessions) == 0 {
		t.Fatal("the writers got nothing acknowledged")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Every acknowledged ban and session is there; every acknowledged
	// refresh token that nothing unanswered may have superseded refreshes.
	verifyLedger(ctx, t, c, led)

	// The event log on the final authority: a snapshot, then every change
	// after the mirror's first revision, once each, in order, none missing.
	finalRev, logRevs, logBans := readLog(ctx, t, c, storeID, firstRev)
	for id := range led.bans {
		if !logBans[id] {
			t.Errorf("acknowledged ban %s has no ban_created event in the log", id)
		}
	}

	// The mirror that followed the whole run saw the same history.
	waitFor(t, 30*time.Second, "the mirror to reach the final revision", func() bool { return mirror.Revision() >= finalRev })
	mirrorMu.Lock()
	defer mirrorMu.Unlock()
	if st := mirror.Stats(); st.Resets != 1 {
		t.Errorf("mirror took %d snapshots, want 1 (it should resume across restarts)", st.Resets)
	}
	for i := 1; i < len(seenRevs); i++ {
		if seenRevs[i] != seenRevs[i-1]+1 {
			t.Errorf("mirror: revision %d after %d (gap or duplicate)", seenRevs[i], seenRevs[i-1])
		}
	}
	if !slices.Equal(seenRevs, logRevs) {
		t.Errorf("mirror saw %d changes (%v...), the log has %d (%v...)", len(seenRevs), head(seenRevs), len(logRevs), head(logRevs))
	}
	active := listActiveBans(ctx, t, c)
	if len(active) != len(mirrorBans) {
		t.Errorf("mirror holds %d bans, ListBans(ACTIVE) %d", len(mirrorBans), len(active))
	}
	for id := range active {
		if !mirrorBans[id] {
			t.Errorf("ban %s active on the authority, missing in the mirror", id)
		}
	}
	if n := mirror.Stats().Bans; n != len(active) {
		t.Errorf("mirror Stats().Bans = %d, ListBans(ACTIVE) = %d", n, len(active))
	}

	// And the file is consistent after a last kill.
	auth.Kill()
	if err := bolt.Check(dbPath); err != nil {
		t.Fatalf("bolt.Check after the final SIGKILL: %v", err)
	}
	t.Logf("log: %d changes after revision %d, final revision %d; mirror: %d connects",
		len(logRevs), firstRev, finalRev, mirror.Stats().Connects)
}

func head(r []int64) []int64 { return r[:min(len(r), 5)] }

func countUncertain(l *ledger) int {
	n := 0
	for _, s := range l.sessions {
		if s.uncertain {
			n++
		}
	}
	return n
}

// runWriter drives CreateBan, CreateSession and RefreshSession until ctx
// ends, recording each acknowledgement in led. Each writer refreshes only
// its own sessions, so no refresh token is ever presented twice.
func runWriter(ctx context.Context, c *client.Client, led *ledger, up *atomic.Pointer[chan struct{}], g int, rng *rand.Rand) {
	var mine []*session // this writer's sessions whose refresh is certain
	for n := 0; ctx.Err() == nil; n++ {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var err error
		switch op := rng.IntN(10); {
		case op < 3:
			user := fmt.Sprintf("banned-%d-%d", g, n)
			var resp *pb.CreateBanResponse
			resp, err = c.Bans.CreateBan(cctx, &pb.CreateBanRequest{
				Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: user}}, Reason: "crash suite",
			}, grpc.WaitForReady(true))
			if err == nil {
				led.mu.Lock()
				led.bans[resp.GetBan().GetBanId()] = user
				led.mu.Unlock()
			}
		case op < 6 || len(mine) == 0:
			var resp *pb.CreateSessionResponse
			resp, err = c.Sessions.CreateSession(cctx, &pb.CreateSessionRequest{
				UserId: fmt.Sprintf("user-%d-%d", g, n), DeviceId: fmt.Sprintf("dev-%d-%d", g, n), ClientIp: "192.0.2.7",
			}, grpc.WaitForReady(true))
			if err == nil {
				s := &session{id: resp.GetSession().GetSessionId(), refresh: resp.GetRefreshToken()}
				led.mu.Lock()
				led.sessions[s.id] = s
				led.mu.Unlock()
				mine = append(mine, s)
			}
		default:
			i := rng.IntN(len(mine))
			s := mine[i]
			led.mu.Lock()
			tok := s.refresh
			led.mu.Unlock()
			var resp *pb.RefreshSessionResponse
			// WaitForReady: while the authority is down the call waits for
			// it instead of failing unsent, so a failure means the call was
			// (probably) in flight when the authority died.
			resp, err = c.Sessions.RefreshSession(cctx, &pb.RefreshSessionRequest{RefreshToken: tok, ClientIp: "192.0.2.7"}, grpc.WaitForReady(true))
			led.mu.Lock()
			if err == nil {
				s.refresh = resp.GetRefreshToken()
			} else {
				// Unanswered (the authority died, or the suite stopped
				// the writers mid-call): it may have committed.
				s.uncertain = true
				mine = slices.Delete(mine, i, i+1)
			}
			led.mu.Unlock()
		}
		cancel()
		switch {
		case err == nil:
			led.acks.Add(1)
		case ctx.Err() != nil:
			return
		case downErr(err):
			// The authority is down: wait until it is back.
			select {
			case <-*up.Load():
			case <-ctx.Done():
				return
			}
		default:
			led.fail(err)
		}
	}
}

func verifyLedger(ctx context.Context, t *testing.T, c *client.Client, led *ledger) {
	t.Helper()
	type job func() error
	jobs := make(chan job)
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var errs []error
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := j(); err != nil {
					errMu.Lock()
					errs = append(errs, err)
					errMu.Unlock()
				}
			}
		}()
	}
	for id, user := range led.bans {
		jobs <- func() error {
			resp, err := c.Bans.GetBan(ctx, &pb.GetBanRequest{BanId: id})
			if err != nil {
				return fmt.Errorf("acknowledged ban %s: %w", id, err)
			}
			if got := resp.GetBan().GetSubject().GetUserId(); got != user {
				return fmt.Errorf("ban %s: subject %q, want %q", id, got, user)
			}
			if st := resp.GetBan().GetState(); st != pb.BanState_BAN_STATE_ACTIVE {
				return fmt.Errorf("ban %s: state %v, want ACTIVE", id, st)
			}
			return nil
		}
	}
	for id, s := range led.sessions {
		jobs <- func() error {
			if _, err := c.Sessions.GetSession(ctx, &pb.GetSessionRequest{SessionId: id}); err != nil {
				return fmt.Errorf("acknowledged session %s: %w", id, err)
			}
			if s.uncertain {
				return nil
			}
			if _, err := c.Sessions.RefreshSession(ctx, &pb.RefreshSessionRequest{RefreshToken: s.refresh, ClientIp: "192.0.2.7"}); err != nil {
				return fmt.Errorf("session %s: its last acknowledged refresh token: %w", id, err)
			}
			return nil
		}
	}
	close(jobs)
	wg.Wait()
	for i, err := range errs {
		if i == 20 {
			t.Errorf("... and %d more", len(errs)-20)
			break
		}
		t.Error(err)
	}
}

// readLog reads the final authority's event log: Watch from 0 must start
// with a snapshot; Watch after firstRev must yield every later change once,
// in order, up to the head (a checkpoint says there is nothing newer).
func readLog(ctx context.Context, t *testing.T, c *client.Client, storeID string, firstRev int64) (head int64, revs []int64, bans map[string]bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := c.Events.Watch(ctx, &pb.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if m.GetSnapshot() == nil || m.GetStoreId() != storeID {
		t.Fatalf("Watch(0): first message %T of store %q, want a snapshot of %q", m.GetPayload(), m.GetStoreId(), storeID)
	}
	head = m.GetRevision()

	s, err = c.Events.Watch(ctx, &pb.WatchRequest{AfterRevision: firstRev, StoreId: storeID}, grpc.MaxCallRecvMsgSize(256<<20))
	if err != nil {
		t.Fatal(err)
	}
	bans = map[string]bool{}
	last := firstRev
	for last < head {
		m, err := s.Recv()
		if err != nil {
			t.Fatalf("Watch(%d) at %d: %v", firstRev, last, err)
		}
		switch p := m.GetPayload().(type) {
		case *pb.WatchResponse_Snapshot:
			t.Fatalf("Watch(%d): a snapshot at %d: the log lost revisions it should retain", firstRev, m.GetRevision())
		case *pb.WatchResponse_Change:
			if m.GetRevision() != last+1 {
				t.Fatalf("log: revision %d after %d (gap or duplicate)", m.GetRevision(), last)
			}
			last = m.GetRevision()
			revs = append(revs, last)
			for _, e := range p.Change.GetEvents() {
				if b := e.GetBanCreated(); b != nil {
					if bans[b.GetBanId()] {
						t.Errorf("log: ban %s created twice", b.GetBanId())
					}
					bans[b.GetBanId()] = true
				}
			}
		case *pb.WatchResponse_Checkpoint:
			if m.GetRevision() != last {
				t.Fatalf("log: checkpoint at %d while the stream is at %d", m.GetRevision(), last)
			}
		}
	}
	return head, revs, bans
}

func listActiveBans(ctx context.Context, t *testing.T, c *client.Client) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	req := &pb.ListBansRequest{State: pb.BanState_BAN_STATE_ACTIVE, PageSize: 1000}
	for {
		resp, err := c.Bans.ListBans(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range resp.GetBans() {
			out[b.GetBanId()] = true
		}
		if resp.GetNextPageToken() == "" {
			return out
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// waitFor polls cond on a ticker until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", d, what)
		case <-tick.C:
		}
	}
}
