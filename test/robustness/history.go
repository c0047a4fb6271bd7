package robustness

import (
	"math"
	"sync"
	"time"
)

// Kind is the kind of a client operation.
type Kind int

// The operations of the mixed load.
const (
	CreateBan Kind = iota + 1
	LiftBan
	CheckBan
	CreateSession
	RefreshSession
	RevokeSession
	VerifySession
)

var kindNames = map[Kind]string{
	CreateBan: "CreateBan", LiftBan: "LiftBan", CheckBan: "CheckBan",
	CreateSession: "CreateSession", RefreshSession: "RefreshSession",
	RevokeSession: "RevokeSession", VerifySession: "VerifySession",
}

func (k Kind) String() string { return kindNames[k] }

// Kinds lists every kind, in report order.
var Kinds = []Kind{CreateBan, LiftBan, CheckBan, CreateSession, RefreshSession, RevokeSession, VerifySession}

// Result is what the client was told.
type Result int

// Results. Unknown is the one that matters for a robustness test: the call
// got no answer (the authority or its store died under it, a deadline), so
// a write may or may not have happened; the model allows both, as etcd's
// robustness models do for a failed Put.
const (
	OK Result = iota
	Unknown
	Banned         // USER_BANNED
	Revoked        // SESSION_REVOKED
	Theft          // TOKEN_THEFT_DETECTED: a superseded refresh token
	AlreadyLifted  // BAN_ALREADY_LIFTED
	AlreadyRevoked // SESSION_ALREADY_REVOKED
	// Failed is a definite refusal that changed nothing (CONFLICT: not
	// applied, retry): it carries no information and is dropped.
	Failed
)

var resultNames = [...]string{"ok", "unknown", "banned", "revoked", "theft", "already-lifted", "already-revoked", "failed"}

func (r Result) String() string { return resultNames[r] }

// Input is an operation's request, reduced to what the model needs.
type Input struct {
	Kind Kind
	User string
	// Tag is unique per CreateBan and travels in the ban's reason, so that
	// a CreateBan without an answer can be matched with the ban it made,
	// if any, when the run is over.
	Tag     string
	BanID   string // LiftBan
	Session string // RefreshSession, RevokeSession, VerifySession
	// Gen is the generation of the refresh token presented: 0 for the one
	// CreateSession returned, n for the one the n-th rotation returned.
	Gen int
}

// Output is the answer, reduced likewise.
type Output struct {
	Result  Result
	BanID   string // CreateBan
	BanIDs  string // CheckBan: the active bans' IDs, sorted, comma-joined
	Session string // CreateSession
}

// Op is one recorded operation: porcupine's Operation before conversion.
type Op struct {
	Client int
	In     Input
	Out    Output
	// Call and Return are nanoseconds since the history began (monotonic
	// clock). An operation whose result is unknown returns "never":
	// math.MaxInt64, concurrent with everything after its call.
	Call, Return int64
}

// Never is the return time of an operation without an answer.
const Never = int64(math.MaxInt64)

// History records the operations of every client. It is safe for
// concurrent use.
type History struct {
	start time.Time
	mu    sync.Mutex
	ops   []Op
}

// NewHistory starts an empty history; times count from now.
func NewHistory() *History { return &History{start: time.Now()} }

// Now is the time to record as an operation's invocation.
func (h *History) Now() int64 { return int64(time.Since(h.start)) }

// Record adds an operation invoked at call and answered now (or never,
// for Unknown).
func (h *History) Record(client int, in Input, call int64, out Output) {
	ret := h.Now()
	if out.Result == Unknown {
		ret = Never
	}
	h.mu.Lock()
	h.ops = append(h.ops, Op{Client: client, In: in, Out: out, Call: call, Return: ret})
	h.mu.Unlock()
}

// Ops returns a copy of the operations recorded so far.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Op(nil), h.ops...)
}

// Resolve prepares recorded operations for the checker, given made: the
// ban ID each CreateBan tag produced, as found in the store at the end.
//
//   - A CreateBan without an answer whose ban exists happened: it gets
//     the ban's ID and still returns never. One whose ban does not exist
//     did not happen (an acknowledged ban that went missing is another
//     matter: LostWrites reports it) and is dropped.
//   - A CreateSession without an answer is dropped: nobody learnt the
//     session's ID or tokens, so no later operation names it, and the
//     only thing it can change (being revoked by a ban) nobody observes.
//   - Reads without an answer (CheckBan, VerifySession) and definite
//     refusals that changed nothing (Failed) carry no information and
//     are dropped.
func Resolve(ops []Op, made map[string]string) []Op {
	out := make([]Op, 0, len(ops))
	for _, op := range ops {
		if op.Out.Result == Failed {
			continue
		}
		if op.Out.Result == Unknown {
			switch op.In.Kind {
			case CreateBan:
				id, ok := made[op.In.Tag]
				if !ok {
					continue
				}
				op.Out = Output{Result: OK, BanID: id}
			case CreateSession, CheckBan, VerifySession:
				continue
			}
		}
		out = append(out, op)
	}
	return out
}

// CountByKind counts operations by kind and result class: acknowledged
// (any answer) or unknown.
func CountByKind(ops []Op) (answered, unknown map[Kind]int) {
	answered, unknown = map[Kind]int{}, map[Kind]int{}
	for _, op := range ops {
		if op.Out.Result == Unknown {
			unknown[op.In.Kind]++
		} else {
			answered[op.In.Kind]++
		}
	}
	return answered, unknown
}
