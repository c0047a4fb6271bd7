package robustness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/rpcerr"
)

// callTimeout bounds one call of the load. A call that runs out gets no
// answer (Unknown), which the model allows: it only makes the history
// less precise, never a false failure, so a busy machine cannot fail the
// run with it.
const callTimeout = 20 * time.Second

// opsPerUser bounds one user's history: when a user has had this many
// operations the load moves on to a fresh one, so that each porcupine
// partition stays small enough to check in milliseconds.
const opsPerUser = 40

// userLoad is what the clients know of one user: the acknowledged bans
// and the sessions with their latest tokens.
type userLoad struct {
	name     string
	ops      atomic.Int64
	mu       sync.Mutex
	bans     []string
	sessions []*sessionLoad
}

type sessionLoad struct {
	id      string
	gen     int    // generation of refresh
	refresh string // the latest refresh token the load was given
	access  string // the latest access token
}

// load drives the mixed load at the authority through a pool of clients
// and records every operation in the history.
type load struct {
	hist    *History
	clients []*client.Client
	seed    uint64

	mu       sync.Mutex
	active   []*userLoad // users the workers pick from
	users    []*userLoad // every user, for the final reads
	nextUser int
	tags     atomic.Int64

	unexpectedMu sync.Mutex
	unexpected   []error
}

func newLoad(hist *History, clients []*client.Client, seed uint64, activeUsers int) *load {
	l := &load{hist: hist, clients: clients, seed: seed}
	for range activeUsers {
		l.active = append(l.active, l.newUserLocked())
	}
	return l
}

func (l *load) newUserLocked() *userLoad {
	u := &userLoad{name: fmt.Sprintf("u%d-%d", l.seed%100000, l.nextUser)}
	l.nextUser++
	l.users = append(l.users, u)
	return u
}

// pick returns a user for the next operation, retiring users that had
// their share.
func (l *load) pick(rng *rand.Rand) *userLoad {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := rng.IntN(len(l.active))
	u := l.active[i]
	if u.ops.Add(1) > opsPerUser {
		u = l.newUserLocked()
		u.ops.Add(1)
		l.active[i] = u
	}
	return u
}

func (l *load) allUsers() []*userLoad {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.users)
}

func (l *load) unexpectedErr(err error) {
	l.unexpectedMu.Lock()
	l.unexpected = append(l.unexpected, err)
	l.unexpectedMu.Unlock()
}

// run is one worker: operations until ctx ends.
func (l *load) run(ctx context.Context, worker int) {
	rng := rand.New(rand.NewPCG(l.seed, uint64(worker)+1))
	c := l.clients[worker%len(l.clients)]
	for ctx.Err() == nil {
		l.one(ctx, worker, c, l.pick(rng), rng)
	}
}

// classify turns a call's error into the model's result. Every status a
// fault can cause (Unavailable, a deadline, Internal from a store that
// failed mid-commit) is Unknown: the write may have committed. A status
// no fault explains (InvalidArgument, codes.Unknown, ...) is also
// recorded as Unknown, and reported as unexpected.
func (l *load) classify(ctx context.Context, op string, err error) Result {
	switch {
	case err == nil:
		return OK
	case errors.Is(err, rpcerr.ErrUserBanned):
		return Banned
	case errors.Is(err, rpcerr.ErrSessionRevoked):
		return Revoked
	case errors.Is(err, rpcerr.ErrTheftDetected):
		return Theft
	case errors.Is(err, rpcerr.ErrBanAlreadyLifted):
		return AlreadyLifted
	case errors.Is(err, rpcerr.ErrSessionAlreadyRevoked):
		return AlreadyRevoked
	case errors.Is(err, rpcerr.ErrConflict):
		return Failed
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Internal, codes.Aborted:
	default:
		if ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			l.unexpectedErr(fmt.Errorf("%s: %w", op, err))
		}
	}
	return Unknown
}

// one performs one operation on u and records it.
func (l *load) one(ctx context.Context, worker int, c *client.Client, u *userLoad, rng *rand.Rand) {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	wait := grpc.WaitForReady(true)
	u.mu.Lock()
	bans := slices.Clone(u.bans)
	sessions := slices.Clone(u.sessions)
	var s sessionLoad
	if len(sessions) > 0 {
		s = *sessions[rng.IntN(len(sessions))]
	}
	u.mu.Unlock()

	in := Input{User: u.name}
	call := l.hist.Now()
	var out Output
	switch p := rng.IntN(100); {
	case p < 10 || (p < 18 && len(bans) == 0):
		in.Kind, in.Tag = CreateBan, fmt.Sprintf("t%d-%d", l.seed%100000, l.tags.Add(1))
		call = l.hist.Now()
		resp, err := c.Bans.CreateBan(cctx, &pb.CreateBanRequest{
			Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: u.name}}, Reason: "robustness " + in.Tag,
		}, wait)
		out.Result = l.classify(ctx, "CreateBan", err)
		if out.Result == OK {
			out.BanID = resp.GetBan().GetBanId()
			u.mu.Lock()
			u.bans = append(u.bans, out.BanID)
			u.mu.Unlock()
		}
	case p < 18:
		in.Kind, in.BanID = LiftBan, bans[rng.IntN(len(bans))]
		call = l.hist.Now()
		_, err := c.Bans.LiftBan(cctx, &pb.LiftBanRequest{BanId: in.BanID, Reason: "robustness"}, wait)
		out.Result = l.classify(ctx, "LiftBan", err)
	case p < 33:
		in.Kind = CheckBan
		call = l.hist.Now()
		resp, err := c.Bans.CheckBan(cctx, &pb.CheckBanRequest{UserId: u.name}, wait)
		out.Result = l.classify(ctx, "CheckBan", err)
		if out.Result == OK {
			var ids []string
			for _, b := range resp.GetBans() {
				ids = append(ids, b.GetBanId())
			}
			slices.Sort(ids)
			out.BanIDs = strings.Join(ids, ",")
		}
	case p < 53 || s.id == "":
		in.Kind = CreateSession
		call = l.hist.Now()
		resp, err := c.Sessions.CreateSession(cctx, &pb.CreateSessionRequest{UserId: u.name, ClientIp: "192.0.2.7"}, wait)
		out.Result = l.classify(ctx, "CreateSession", err)
		if out.Result == OK {
			out.Session = resp.GetSession().GetSessionId()
			u.mu.Lock()
			u.sessions = append(u.sessions, &sessionLoad{id: out.Session, refresh: resp.GetRefreshToken(), access: resp.GetAccessToken()})
			u.mu.Unlock()
		}
	case p < 80:
		// Two workers may pick the same session and present the same
		// token at once: exactly one may rotate it, the other is a reuse.
		in.Kind, in.Session, in.Gen = RefreshSession, s.id, s.gen
		call = l.hist.Now()
		resp, err := c.Sessions.RefreshSession(cctx, &pb.RefreshSessionRequest{RefreshToken: s.refresh, ClientIp: "192.0.2.7"}, wait)
		out.Result = l.classify(ctx, "RefreshSession", err)
		if out.Result == OK {
			u.mu.Lock()
			for _, x := range u.sessions {
				if x.id == s.id && x.gen == s.gen {
					x.gen, x.refresh, x.access = s.gen+1, resp.GetRefreshToken(), resp.GetAccessToken()
				}
			}
			u.mu.Unlock()
		}
	case p < 85:
		in.Kind, in.Session = RevokeSession, s.id
		call = l.hist.Now()
		_, err := c.Sessions.RevokeSession(cctx, &pb.RevokeSessionRequest{SessionId: s.id, Reason: "robustness"}, wait)
		out.Result = l.classify(ctx, "RevokeSession", err)
	default:
		in.Kind, in.Session = VerifySession, s.id
		call = l.hist.Now()
		_, err := c.Sessions.VerifySession(cctx, &pb.VerifySessionRequest{AccessToken: s.access, ClientIp: "192.0.2.7"}, wait)
		out.Result = l.classify(ctx, "VerifySession", err)
	}
	if ctx.Err() != nil && out.Result == Unknown && in.Kind != CreateBan && in.Kind != LiftBan && in.Kind != RefreshSession && in.Kind != RevokeSession && in.Kind != CreateSession {
		return // a read cut by the end of the run
	}
	l.hist.Record(worker, in, call, out)
}

// bigUser creates a user with n sessions (8 at a time), outside the
// active pool: a ban on it revokes more sessions than one etcd
// transaction may write, so the authority splits the revocations into
// the documented batches (README, "bbolt or etcd").
func (l *load) bigUser(ctx context.Context, n int) *userLoad {
	l.mu.Lock()
	u := l.newUserLocked()
	l.mu.Unlock()
	u.name = "big-" + u.name
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := l.clients[w%len(l.clients)]
			for i := w; i < n; i += 8 {
				call := l.hist.Now()
				resp, err := c.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{UserId: u.name, ClientIp: "192.0.2.7"}, grpc.WaitForReady(true))
				out := Output{Result: l.classify(ctx, "CreateSession", err)}
				if out.Result == OK {
					out.Session = resp.GetSession().GetSessionId()
					u.mu.Lock()
					u.sessions = append(u.sessions, &sessionLoad{id: out.Session, refresh: resp.GetRefreshToken(), access: resp.GetAccessToken()})
					u.mu.Unlock()
				}
				l.hist.Record(1000+w, Input{Kind: CreateSession, User: u.name}, call, out)
			}
		}()
	}
	wg.Wait()
	return u
}

// banBig bans u (from bigUser) and records it.
func (l *load) banBig(ctx context.Context, u *userLoad) {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	in := Input{Kind: CreateBan, User: u.name, Tag: fmt.Sprintf("t%d-big-%d", l.seed%100000, l.tags.Add(1))}
	call := l.hist.Now()
	resp, err := l.clients[0].Bans.CreateBan(cctx, &pb.CreateBanRequest{
		Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: u.name}}, Reason: "robustness " + in.Tag,
	}, grpc.WaitForReady(true))
	out := Output{Result: l.classify(ctx, "CreateBan", err)}
	if out.Result == OK {
		out.BanID = resp.GetBan().GetBanId()
	}
	l.hist.Record(999, in, call, out)
}

// finalReads records, once the faults are healed and the load has
// stopped, a CheckBan of every user and a VerifySession of every
// session's latest access token: the linearizability check then also
// proves that nothing acknowledged was lost or undone by the last fault.
func (l *load) finalReads(ctx context.Context, c *client.Client, worker int) {
	for _, u := range l.allUsers() {
		call := l.hist.Now()
		resp, err := c.Bans.CheckBan(ctx, &pb.CheckBanRequest{UserId: u.name})
		out := Output{Result: l.classify(ctx, "final CheckBan", err)}
		if out.Result == OK {
			var ids []string
			for _, b := range resp.GetBans() {
				ids = append(ids, b.GetBanId())
			}
			slices.Sort(ids)
			out.BanIDs = strings.Join(ids, ",")
		}
		l.hist.Record(worker, Input{Kind: CheckBan, User: u.name}, call, out)
		u.mu.Lock()
		sessions := slices.Clone(u.sessions)
		u.mu.Unlock()
		for _, s := range sessions {
			call := l.hist.Now()
			_, err := c.Sessions.VerifySession(ctx, &pb.VerifySessionRequest{AccessToken: s.access, ClientIp: "192.0.2.7"})
			l.hist.Record(worker, Input{Kind: VerifySession, User: u.name, Session: s.id}, call, Output{Result: l.classify(ctx, "final VerifySession", err)})
		}
	}
}
