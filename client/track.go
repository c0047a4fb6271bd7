package client

import (
	"sync"
	"sync/atomic"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// Track registers an open stream of session s, admitted by a Check with
// in (in.ClientIP, in.DeviceID and in.Capability: the stream's method's
// capability, "" for none), so that the mirror ends it without the
// stream's handler polling: when an applied change bans the user (in the
// session's tenant or "*"), the session's or the request's device, or an
// IP prefix containing in.ClientIP — a full ban, or one restricting
// in.Capability — or revokes the session, or a reset brings such a state,
// the mirror calls cancel with the error Check would now return (a
// *BanError such as USER_BANNED or CAPABILITY_RESTRICTED with the ban's
// ID, or ErrSessionRevoked). If the state already refuses the stream when
// Track is called (an event applied since its Check), cancel is called
// before Track returns.
//
// cancel is called at most once, right after the new state is in place,
// in the goroutine that applies the stream: it must be cheap and must not
// block (cancel a context, close a channel). untrack removes the
// registration; call it when the stream ends (it is safe to call after
// cancel, and more than once).
//
// Tracked streams are indexed by user, device and session, so a ban or a
// revocation finds its streams without scanning them all; an IP ban scans
// the streams tracked with an address.
func (m *Mirror) Track(s *Session, in CheckInput, cancel func(error)) (untrack func()) {
	t := &tracked{cancel: cancel, subj: subject{
		tenant: s.TenantID, user: s.UserID, userH: strHash(s.UserID),
		device: s.DeviceID, session: revocationKey(s), sessionH: strHash(revocationKey(s)),
		token: tokenRevocationKey(s), tokenH: strHash(tokenRevocationKey(s)),
		ip: normalAddr(in.ClientIP), capability: in.Capability,
	}}
	if s.DeviceID != "" {
		t.subj.deviceH = strHash(s.DeviceID)
	}
	if in.DeviceID != "" && in.DeviceID != s.DeviceID {
		t.subj.device2, t.subj.device2H = in.DeviceID, strHash(in.DeviceID)
	}
	m.tracker.add(t)
	// Registered first, then checked: a change applied before this load is
	// seen here; one applied after it finds t in the index.
	if st := m.state.Load(); st != nil {
		if err := st.refusal(&t.subj, m.clock().UnixNano()); err != nil {
			m.tracker.fire(t, err)
		}
	}
	return func() { m.tracker.remove(t) }
}

type tracked struct {
	subj   subject
	cancel func(error)
	fired  atomic.Bool
}

// tracker indexes the tracked streams.
type tracker struct {
	mu        sync.Mutex
	byUser    map[string]map[*tracked]struct{}
	byDevice  map[string]map[*tracked]struct{}
	bySession map[string]map[*tracked]struct{}
	withIP    map[*tracked]struct{}
	all       map[*tracked]struct{}
}

func (tr *tracker) init() {
	tr.byUser = map[string]map[*tracked]struct{}{}
	tr.byDevice = map[string]map[*tracked]struct{}{}
	tr.bySession = map[string]map[*tracked]struct{}{}
	tr.withIP = map[*tracked]struct{}{}
	tr.all = map[*tracked]struct{}{}
}

func (tr *tracker) len() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.all)
}

func addTo(idx map[string]map[*tracked]struct{}, k string, t *tracked) {
	set := idx[k]
	if set == nil {
		set = map[*tracked]struct{}{}
		idx[k] = set
	}
	set[t] = struct{}{}
}

func removeFrom(idx map[string]map[*tracked]struct{}, k string, t *tracked) {
	if set := idx[k]; set != nil {
		delete(set, t)
		if len(set) == 0 {
			delete(idx, k)
		}
	}
}

func (tr *tracker) add(t *tracked) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.all[t] = struct{}{}
	addTo(tr.byUser, t.subj.user, t)
	addTo(tr.bySession, t.subj.session, t)
	if t.subj.token != "" {
		addTo(tr.bySession, t.subj.token, t)
	}
	if t.subj.device != "" {
		addTo(tr.byDevice, t.subj.device, t)
	}
	if t.subj.device2 != "" {
		addTo(tr.byDevice, t.subj.device2, t)
	}
	if t.subj.ip.IsValid() {
		tr.withIP[t] = struct{}{}
	}
}

func (tr *tracker) remove(t *tracked) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if _, ok := tr.all[t]; !ok {
		return
	}
	delete(tr.all, t)
	removeFrom(tr.byUser, t.subj.user, t)
	removeFrom(tr.bySession, t.subj.session, t)
	removeFrom(tr.bySession, t.subj.token, t)
	removeFrom(tr.byDevice, t.subj.device, t)
	removeFrom(tr.byDevice, t.subj.device2, t)
	delete(tr.withIP, t)
}

// fire untracks t and calls its cancel, once.
func (tr *tracker) fire(t *tracked, err error) {
	if !t.fired.CompareAndSwap(false, true) {
		return
	}
	tr.remove(t)
	t.cancel(err)
}

// notify cancels the tracked streams that the events of a change (applied
// in st) now refuse.
func (tr *tracker) notify(st *state, events []*pb.Event, now int64) {
	var cands []*tracked
	tr.mu.Lock()
	if len(tr.all) == 0 {
		tr.mu.Unlock()
		return
	}
	for _, e := range events {
		switch k := e.GetKind().(type) {
		case *pb.Event_BanCreated:
			// A capability ban finds the same candidates; refusal then
			// ends only the streams of a capability it restricts.
			switch kind, value, prefix, ok := banSubject(k.BanCreated); {
			case !ok:
			case kind == subjectUser:
				for t := range tr.byUser[value] {
					cands = append(cands, t)
				}
			case kind == subjectDevice:
				for t := range tr.byDevice[value] {
					cands = append(cands, t)
				}
			case kind == subjectIP:
				for t := range tr.withIP {
					if prefix.Contains(t.subj.ip) {
						cands = append(cands, t)
					}
				}
			}
		case *pb.Event_SessionRevoked:
			for t := range tr.bySession[revokedKey(k.SessionRevoked)] {
				cands = append(cands, t)
			}
		}
	}
	tr.mu.Unlock()
	tr.check(st, cands, now)
}

// recheckAll checks every tracked stream against st (after a reset).
func (tr *tracker) recheckAll(st *state, now int64) {
	tr.mu.Lock()
	cands := make([]*tracked, 0, len(tr.all))
	for t := range tr.all {
		cands = append(cands, t)
	}
	tr.mu.Unlock()
	tr.check(st, cands, now)
}

func (tr *tracker) check(st *state, cands []*tracked, now int64) {
	for _, t := range cands {
		if t.fired.Load() {
			continue // a duplicate candidate, already cancelled
		}
		if err := st.refusal(&t.subj, now); err != nil {
			tr.fire(t, err)
		}
	}
}
