package robustness

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// userState is the model's state of one user: the IDs of the user's
// active bans (the ban lifecycle) and the user's sessions, each a refresh
// token family (the current generation, revoked or not).
type userState struct {
	bans     []string // sorted
	sessions []family // sorted by id
}

type family struct {
	id      string
	gen     int
	revoked bool
}

func (s userState) equal(o userState) bool {
	return slices.Equal(s.bans, o.bans) && slices.Equal(s.sessions, o.sessions)
}

func (s userState) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "bans=[%s] sessions=[", strings.Join(s.bans, ","))
	for i, f := range s.sessions {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s:g%d", f.id, f.gen)
		if f.revoked {
			b.WriteString(":revoked")
		}
	}
	b.WriteString("]")
	return b.String()
}

func (s userState) family(id string) (int, bool) {
	i := sort.Search(len(s.sessions), func(i int) bool { return s.sessions[i].id >= id })
	return i, i < len(s.sessions) && s.sessions[i].id == id
}

// with returns a copy with f put in place of (or beside) its namesake.
func (s userState) with(f family) userState {
	i, ok := s.family(f.id)
	fs := slices.Clone(s.sessions)
	if ok {
		fs[i] = f
	} else {
		fs = slices.Insert(fs, i, f)
	}
	return userState{bans: s.bans, sessions: fs}
}

// banned applies a full user ban: the ban is active and every session of
// the user is revoked, in the same write (as the authority's CreateBan
// does; the etcd batches of a ban on more sessions than one transaction
// holds do not arise with the handful of sessions a user has here).
func (s userState) banned(id string) userState {
	bans := slices.Clone(s.bans)
	i, _ := slices.BinarySearch(bans, id)
	bans = slices.Insert(bans, i, id)
	fs := slices.Clone(s.sessions)
	for i := range fs {
		fs[i].revoked = true
	}
	return userState{bans: bans, sessions: fs}
}

// step is the authority's behaviour for one operation on state s: the
// states it may leave and the answer it gives (for an operation that
// answered). An operation whose result is unknown may have taken effect
// or not, so step is nondeterministic.
func step(s userState, in Input, out Output) []userState {
	if out.Result == Unknown {
		switch in.Kind {
		case LiftBan, RefreshSession, RevokeSession:
			// Happened (whatever the answer would have been) or not.
			var next []userState
			for _, r := range []Result{OK, AlreadyLifted, AlreadyRevoked, Revoked, Theft, Banned} {
				next = append(next, step(s, in, Output{Result: r})...)
			}
			return append(next, s)
		}
		return nil // Resolve removed the others
	}
	switch in.Kind {
	case CreateBan:
		if out.Result != OK || out.BanID == "" || slices.Contains(s.bans, out.BanID) {
			return nil
		}
		return []userState{s.banned(out.BanID)}
	case LiftBan:
		i, active := slices.BinarySearch(s.bans, in.BanID)
		switch {
		case out.Result == OK && active:
			return []userState{{bans: slices.Delete(slices.Clone(s.bans), i, i+1), sessions: s.sessions}}
		case out.Result == AlreadyLifted && !active:
			return []userState{s}
		}
		return nil
	case CheckBan:
		if out.Result == OK && out.BanIDs == strings.Join(s.bans, ",") {
			return []userState{s}
		}
		return nil
	case CreateSession:
		_, exists := s.family(out.Session)
		switch {
		case out.Result == OK && len(s.bans) == 0 && !exists && out.Session != "":
			return []userState{s.with(family{id: out.Session})}
		case out.Result == Banned && len(s.bans) > 0:
			return []userState{s}
		}
		return nil
	case RefreshSession:
		i, ok := s.family(in.Session)
		if !ok {
			return nil // a token of a session not created yet
		}
		f := s.sessions[i]
		superseded := in.Gen != f.gen
		if in.Gen > f.gen {
			return nil // a token not issued yet
		}
		// The authority's order (internal/authority RefreshSession).
		switch {
		case superseded && f.revoked:
			if out.Result == Theft {
				return []userState{s}
			}
		case f.revoked:
			if out.Result == Revoked {
				return []userState{s}
			}
		case superseded:
			if out.Result == Theft {
				f.revoked = true
				return []userState{s.with(f)}
			}
		case len(s.bans) > 0:
			if out.Result == Banned {
				return []userState{s}
			}
		default:
			if out.Result == OK {
				f.gen++
				return []userState{s.with(f)}
			}
		}
		return nil
	case RevokeSession:
		i, ok := s.family(in.Session)
		if !ok {
			return nil
		}
		f := s.sessions[i]
		switch {
		case out.Result == OK && !f.revoked:
			f.revoked = true
			return []userState{s.with(f)}
		case out.Result == AlreadyRevoked && f.revoked:
			return []userState{s}
		}
		return nil
	case VerifySession:
		i, ok := s.family(in.Session)
		if !ok {
			return nil
		}
		// Bans first, then revocation (internal/authority VerifySession).
		switch {
		case len(s.bans) > 0:
			if out.Result == Banned {
				return []userState{s}
			}
		case s.sessions[i].revoked:
			if out.Result == Revoked {
				return []userState{s}
			}
		case out.Result == OK:
			return []userState{s}
		}
		return nil
	}
	return nil
}

// UserModel is the porcupine model of the authority, partitioned per user
// (a user's bans and sessions never interact with another's), so that
// each linearizability check covers one user's few dozen operations.
var UserModel = (&porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byUser := map[string][]porcupine.Operation{}
		var users []string
		for _, op := range history {
			u := op.Input.(Input).User
			if _, ok := byUser[u]; !ok {
				users = append(users, u)
			}
			byUser[u] = append(byUser[u], op)
		}
		out := make([][]porcupine.Operation, 0, len(users))
		for _, u := range users {
			out = append(out, byUser[u])
		}
		return out
	},
	Init: func() []any { return []any{userState{}} },
	Step: func(state, input, output any) []any {
		next := step(state.(userState), input.(Input), output.(Output))
		out := make([]any, len(next))
		for i, s := range next {
			out[i] = s
		}
		return out
	},
	Equal: func(a, b any) bool { return a.(userState).equal(b.(userState)) },
	DescribeOperation: func(input, output any) string {
		in, out := input.(Input), output.(Output)
		arg := in.BanID + in.Session
		if in.Kind == RefreshSession {
			arg = fmt.Sprintf("%s g%d", in.Session, in.Gen)
		}
		res := out.Result.String()
		if v := out.BanID + out.BanIDs + out.Session; v != "" {
			res += " " + v
		}
		return fmt.Sprintf("%s(%s %s) -> %s", in.Kind, in.User, arg, res)
	},
	DescribeState: func(state any) string { return state.(userState).String() },
}).ToModel()

// Linearizability is the verdict on a history.
type Linearizability struct {
	Result porcupine.CheckResult // Ok, Illegal, or Unknown (timed out)
	Ops    int                   // operations checked
	Users  int                   // partitions
	Info   porcupine.LinearizationInfo
}

// CheckLinearizable checks resolved operations (see Resolve) against
// UserModel, within timeout (0: none).
func CheckLinearizable(ops []Op, timeout time.Duration) Linearizability {
	hist := make([]porcupine.Operation, len(ops))
	users := map[string]bool{}
	for i, op := range ops {
		hist[i] = porcupine.Operation{ClientId: op.Client, Input: op.In, Call: op.Call, Output: op.Out, Return: op.Return}
		users[op.In.User] = true
	}
	res, info := porcupine.CheckOperationsVerbose(UserModel, hist, timeout)
	return Linearizability{Result: res, Ops: len(ops), Users: len(users), Info: info}
}

// Illegal returns, for a history that failed, the users whose own
// operations are not linearizable, each with its operations in call
// order, described for a failure message.
func Illegal(ops []Op, timeout time.Duration, limit int) map[string][]string {
	byUser := map[string][]Op{}
	for _, op := range ops {
		byUser[op.In.User] = append(byUser[op.In.User], op)
	}
	out := map[string][]string{}
	for u, uops := range byUser {
		if len(out) == limit {
			break
		}
		if CheckLinearizable(uops, timeout).Result != porcupine.Illegal {
			continue
		}
		slices.SortFunc(uops, func(a, b Op) int { return int(a.Call - b.Call) })
		var lines []string
		for _, op := range uops {
			ret := "never"
			if op.Return != Never {
				ret = fmt.Sprint(time.Duration(op.Return))
			}
			lines = append(lines, fmt.Sprintf("client %d [%v .. %s] %s", op.Client, time.Duration(op.Call),
				ret, UserModel.DescribeOperation(op.In, op.Out)))
		}
		out[u] = lines
	}
	return out
}
