package client

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// MirrorIdentity names a mirror to the authority: operators see it in
// ListSubscribers and in the laggards of a write made with a wait.
type MirrorIdentity struct {
	// Service is the service the mirror enforces for (default: the
	// binary's name, from os.Args[0]).
	Service string
	// InstanceID tells instances of one service apart (default:
	// "hostname-pid").
	InstanceID string
	// Version is the service's version (default: the main module's version
	// from the build information, "(devel)" when built from a work tree).
	Version string
}

// defaultIdentity is the identity a mirror reports when
// MirrorOptions.Identity leaves fields empty.
func defaultIdentity() MirrorIdentity {
	id := MirrorIdentity{Service: filepath.Base(os.Args[0])}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if id.Service == "" || id.Service == "." {
			id.Service = filepath.Base(bi.Path)
		}
		id.Version = bi.Main.Version
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "unknown"
	}
	id.InstanceID = host + "-" + strconv.Itoa(os.Getpid())
	return id
}

func (id MirrorIdentity) withDefaults() MirrorIdentity {
	d := defaultIdentity()
	if id.Service == "" {
		id.Service = d.Service
	}
	if id.InstanceID == "" {
		id.InstanceID = d.InstanceID
	}
	if id.Version == "" {
		id.Version = d.Version
	}
	return id
}

// progress is the mirror's side of the progress protocol, and the
// condition that WaitRevision waits on.
type progress struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced when the state's revision changes

	// authority is the authority's current revision as last learnt (from a
	// checkpoint or a progress report's answer).
	authority atomic.Int64
	reports   atomic.Int64 // progress reports sent
}

// advanced wakes the waiters of WaitRevision. Called by apply.
func (p *progress) advanced() {
	p.mu.Lock()
	if p.changed != nil {
		close(p.changed)
		p.changed = nil
	}
	p.mu.Unlock()
}

func (p *progress) changedCh() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.changed == nil {
		p.changed = make(chan struct{})
	}
	return p.changed
}

func (m *Mirror) identityPB() *pb.MirrorIdentity {
	if m.opts.DisableProgress {
		return nil
	}
	id := m.opts.Identity
	return &pb.MirrorIdentity{Service: id.Service, InstanceId: id.InstanceID, Version: id.Version}
}

// reporter sends the progress reports of one Watch stream, as messages of
// one StreamProgress stream (one message per report). Reports are coalesced:
// while one is being sent, further applies leave one pending report, which
// carries the revision of the moment it is sent.
type reporter struct {
	m    *Mirror
	id   string
	kick chan struct{}
	// loading is set while the stream's snapshot is being received and
	// applied: the reporter then sends a heartbeat (revision 0) every
	// loadHeartbeat.
	loading atomic.Bool

	stream pb.EventService_StreamProgressClient // nil until the first report, or after it broke
}

// startReporter starts the reporter of a stream whose first response
// carried subscriber id, until ctx (the stream's) ends.
func (m *Mirror) startReporter(ctx context.Context, id string) *reporter {
	r := &reporter{m: m, id: id, kick: make(chan struct{}, 1)}
	go r.run(ctx)
	return r
}

// applied asks for a report; it never blocks.
func (r *reporter) applied() {
	if r == nil {
		return
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// setLoading says whether the stream's snapshot is being loaded.
func (r *reporter) setLoading(v bool) {
	if r != nil {
		r.loading.Store(v)
	}
}

// loadHeartbeat is how often a mirror that loads a snapshot tells the
// authority it is alive: well within the authority's load timeout (at
// least its send timeout, 30s by default; see StreamProgress).
const loadHeartbeat = time.Second

func (r *reporter) run(ctx context.Context) {
	heartbeat := time.NewTicker(loadHeartbeat)
	defer heartbeat.Stop()
	for {
		var rev int64
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
			rev = r.m.Revision()
		case <-heartbeat.C:
			if !r.loading.Load() {
				continue
			}
			// Revision 0: alive, nothing of this stream applied yet. The
			// mirror's own revision may be of another store, or beyond
			// the snapshot's: not one this stream sent.
		}
		err := r.send(ctx, rev)
		if err == nil {
			r.m.progress.reports.Add(1)
			continue
		}
		if ctx.Err() != nil {
			return
		}
		switch status.Code(err) {
		case codes.NotFound, codes.PermissionDenied:
			// Another replica than the stream's, or a key without
			// events:watch: reports cannot work on this stream.
			r.m.log.Warn("portcullis: mirror cannot report progress on this stream; writes that wait will name it",
				"subscriber_id", r.id, "error", err)
			return
		}
		// Anything else (the connection broke): the next apply or
		// checkpoint reports again, on a new stream.
		r.m.log.Debug("portcullis: progress report failed", "error", err)
	}
}

// send sends one report on the progress stream, opened on first use.
func (r *reporter) send(ctx context.Context, rev int64) error {
	if r.stream == nil {
		s, err := r.m.events.StreamProgress(ctx)
		if err != nil {
			return err
		}
		r.stream = s
	}
	if err := r.stream.Send(&pb.StreamProgressRequest{SubscriberId: r.id, Revision: rev}); err != nil {
		// The authority ended the stream (Send says io.EOF): its status
		// says why.
		_, err = r.stream.CloseAndRecv()
		r.stream = nil
		if err == nil {
			err = status.Error(codes.Unavailable, "the authority closed the progress stream")
		}
		return err
	}
	return nil
}

func (m *Mirror) noteAuthorityRevision(rev int64) {
	for {
		cur := m.progress.authority.Load()
		if rev <= cur || m.progress.authority.CompareAndSwap(cur, rev) {
			return
		}
	}
}

// authorityRevision returns the authority's current revision as the
// mirror last learnt it (from a checkpoint or the answer to a progress
// report); Revision() less than it means the mirror is behind.
func (m *Mirror) authorityRevision() int64 { return max(m.progress.authority.Load(), m.Revision()) }

// WaitRevision waits until the mirror's state includes revision rev of
// the store it follows, or ctx ends (then it returns an error wrapping
// ErrMirrorStale). It does not poll: apply wakes it.
func (m *Mirror) WaitRevision(ctx context.Context, rev int64) error {
	for {
		changed := m.progress.changedCh()
		if st := m.state.Load(); st != nil && st.rev >= rev {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%w: mirror at revision %d has not reached the authority's %d: %v", ErrMirrorStale, m.Revision(), rev, ctx.Err())
		}
	}
}

// CatchUp asks the authority for its current revision (EventService.
// GetRevision, one round trip) and waits until the mirror has applied it,
// or ctx ends: afterwards a Check sees every write committed before
// CatchUp was called. It fails with an error wrapping ErrMirrorStale when
// the authority cannot be asked or the mirror does not catch up in time.
// Strict methods of the interceptors call it before Check.
func (m *Mirror) CatchUp(ctx context.Context) error {
	if m.events == nil {
		return fmt.Errorf("%w: the mirror has no connection to ask the authority", ErrMirrorStale)
	}
	resp, err := m.events.GetRevision(ctx, &pb.GetRevisionRequest{})
	if err != nil {
		// %v, not %w: the status of the failed call must not replace
		// MIRROR_STALE in the caller's answer.
		return fmt.Errorf("%w: cannot ask the authority for its revision: %v", ErrMirrorStale, err)
	}
	if st := m.state.Load(); st != nil && st.storeID != resp.GetStoreId() {
		return fmt.Errorf("%w: the mirror follows store %q, the authority serves %q", ErrMirrorStale, st.storeID, resp.GetStoreId())
	}
	m.noteAuthorityRevision(resp.GetRevision())
	return m.WaitRevision(ctx, resp.GetRevision())
}
