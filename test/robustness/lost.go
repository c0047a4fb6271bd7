package robustness

import "fmt"

// Final is the store's state at the end of a run, as read through the
// public API once every fault is healed.
type Final struct {
	// Bans is every ban in the store, active or lifted, by ID.
	Bans map[string]FinalBan
	// Sessions is every session the clients learnt of, by ID; a missing
	// one is absent.
	Sessions map[string]FinalSession
}

// FinalBan is a ban as the store has it at the end.
type FinalBan struct {
	User   string
	Tag    string // the CreateBan's tag, from the ban's reason
	Lifted bool
}

// FinalSession is a session as the store has it at the end.
type FinalSession struct {
	User    string
	Revoked bool
}

// Made maps each CreateBan tag to the ban it produced, for Resolve.
func (f Final) Made() map[string]string {
	out := make(map[string]string, len(f.Bans))
	for id, b := range f.Bans {
		if b.Tag != "" {
			out[b.Tag] = id
		}
	}
	return out
}

// LostWrites lists the acknowledged writes the final state does not hold:
// a ban acknowledged as created that is missing (or belongs to someone
// else), a lift acknowledged whose ban is still active, a session
// acknowledged as created that is missing, a revocation acknowledged
// whose session is live. Every such loss is a durability bug; the
// linearizability check would also fail on the reads that saw it, but a
// loss nobody read afterwards is only caught here. So is a ban
// acknowledged while a session of its user created before it is still
// live at the end: the revocations a ban makes are part of its write
// (on etcd, of its documented batches, all committed before the answer).
func LostWrites(ops []Op, f Final) []string {
	var lost []string
	// A full ban revokes every session of its user created before it.
	created := map[string][]Op{}
	for _, op := range ops {
		if op.In.Kind == CreateSession && op.Out.Result == OK {
			created[op.In.User] = append(created[op.In.User], op)
		}
	}
	for _, op := range ops {
		if op.In.Kind != CreateBan || op.Out.Result != OK {
			continue
		}
		for _, c := range created[op.In.User] {
			if s, ok := f.Sessions[c.Out.Session]; c.Return < op.Call && ok && !s.Revoked {
				lost = append(lost, fmt.Sprintf("acknowledged CreateBan %s of %s left session %s live", op.Out.BanID, op.In.User, c.Out.Session))
			}
		}
	}
	for _, op := range ops {
		if op.Out.Result != OK {
			continue
		}
		switch op.In.Kind {
		case CreateBan:
			b, ok := f.Bans[op.Out.BanID]
			if !ok || b.User != op.In.User {
				lost = append(lost, fmt.Sprintf("acknowledged CreateBan %s of %s is missing", op.Out.BanID, op.In.User))
			}
		case LiftBan:
			if b, ok := f.Bans[op.In.BanID]; !ok || !b.Lifted {
				lost = append(lost, fmt.Sprintf("acknowledged LiftBan %s of %s: the ban is not lifted", op.In.BanID, op.In.User))
			}
		case CreateSession:
			s, ok := f.Sessions[op.Out.Session]
			if !ok || s.User != op.In.User {
				lost = append(lost, fmt.Sprintf("acknowledged CreateSession %s of %s is missing", op.Out.Session, op.In.User))
			}
		case RevokeSession:
			if s, ok := f.Sessions[op.In.Session]; !ok || !s.Revoked {
				lost = append(lost, fmt.Sprintf("acknowledged RevokeSession %s of %s: the session is live", op.In.Session, op.In.User))
			}
		}
	}
	return lost
}
