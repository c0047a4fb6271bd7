package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/rpcerr"
)

// Run follows the authority's event stream until ctx ends, and returns
// ctx's error. Start it once, in its own goroutine, then WaitSynced;
// StartMirror does both. It loads a snapshot (gathering its parts, and
// building the state once the last has arrived), applies changes, and, when the stream ends
// (authority restart, network, SUBSCRIBER_TOO_SLOW), reconnects after a
// jittered, capped exponential backoff and resumes from its revision and
// store_id: the authority sends the missed changes, or a snapshot (a
// reset) when it no longer has them or its store is another one. A stream
// that ends mid-snapshot leaves the state, revision and store_id as they
// were: the parts received are dropped.
func (m *Mirror) Run(ctx context.Context) error {
	if m.events == nil {
		return errors.New("client: Mirror has no Client")
	}
	if !m.running.CompareAndSwap(false, true) {
		return errors.New("client: Mirror.Run is already running")
	}
	defer m.running.Store(false)
	backoff := m.opts.MinBackoff
	for {
		heard, err := m.follow(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if heard {
			backoff = m.opts.MinBackoff
		}
		level := slog.LevelWarn
		if errors.Is(err, ErrAPIKeyInvalid) || errors.Is(err, ErrPermissionDenied) {
			level = slog.LevelError // will not fix itself
			if m.refused != nil {
				m.refused(err)
			}
		}
		// Equal jitter: half the backoff, plus up to as much again, so
		// that mirrors cut off together do not reconnect together.
		wait := backoff/2 + rand.N(backoff/2+1)
		if d, ok := retryDelay(err); ok && errors.Is(err, rpcerr.ErrSnapshotTooSoon) {
			// The authority refuses another snapshot before d (this mirror
			// left its last ones unacknowledged): reconnecting sooner would
			// only be refused again.
			wait = d + rand.N(backoff/2+1)
		}
		if m.reconnectHook != nil {
			m.reconnectHook(err, wait)
		}
		m.log.Log(ctx, level, "portcullis: watch stream ended; reconnecting", "error", err,
			"revision", m.Revision(), "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, m.opts.MaxBackoff)
	}
}

// follow reads one Watch stream until it fails. heard reports whether it
// delivered anything.
func (m *Mirror) follow(ctx context.Context) (heard bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream when we stop reading it
	req := &pb.WatchRequest{Identity: m.identityPB()}
	if st := m.state.Load(); st != nil {
		req.AfterRevision, req.StoreId = st.rev, st.storeID
	}
	// WaitForReady: while the authority is unreachable the call waits for
	// the connection (gRPC reconnects with its own backoff) instead of
	// failing at once.
	// MaxCallRecvMsgSize (MirrorOptions.MaxMessageSize): snapshots come in
	// parts of about 1 MiB, but a change is one message however many
	// sessions its write revoked.
	opts := []grpc.CallOption{grpc.WaitForReady(true), grpc.MaxCallRecvMsgSize(m.opts.MaxMessageSize)}
	// The watch codec reads a snapshot's bans apart from their messages
	// (snapwire.go), unless beforeApply is to see every message whole.
	var codec *watchCodec
	if m.opts.beforeApply == nil {
		codec = &watchCodec{}
		opts = append(opts, grpc.ForceCodecV2(codec))
	}
	stream, err := m.events.Watch(ctx, req, opts...)
	if err != nil {
		return false, err
	}
	defer m.dropParts() // a snapshot this stream left unfinished never applies
	m.stats.connects.Add(1)
	var rep *reporter // progress reports of this stream (progress.go)
	var changes int   // applied on this stream before it caught up
	caughtUp := false
	for {
		resp, err := stream.Recv()
		if err != nil {
			return heard, err
		}
		var bans []wireBan // the bans of a snapshot part, read apart
		if codec != nil {
			bans = codec.take()
		}
		heard = true
		if id := resp.GetSubscriberId(); id != "" && rep == nil && !m.opts.DisableProgress {
			rep = m.startReporter(ctx, id)
		}
		if resp.GetSnapshot() != nil {
			// Until its last part is applied, the stream has nothing to
			// report: the reporter sends heartbeats instead, so that the
			// authority knows a slow load from a dead mirror.
			rep.setLoading(true)
		}
		if m.opts.beforeApply != nil {
			m.opts.beforeApply(resp)
		}
		if err := m.apply(resp, bans); err != nil {
			return heard, err
		}
		switch {
		case caughtUp:
		case resp.GetChange() != nil:
			changes++
		case resp.GetCheckpoint() != nil:
			// The stream's first checkpoint is the authority's caught-up
			// marker: everything up to its revision at the stream's start
			// has been applied.
			caughtUp = true
			m.stats.caughtUp.Add(1)
			m.log.Info("portcullis: mirror caught up", "revision", m.Revision(), "changes_on_catch_up", changes)
		}
		if !resp.GetSnapshot().GetMore() { // a snapshot's earlier parts change nothing yet
			rep.setLoading(false)
			rep.applied()
		}
	}
}

// retryDelay is the delay of the google.rpc.RetryInfo err carries.
func retryDelay(err error) (time.Duration, bool) {
	st, ok := status.FromError(err)
	if !ok {
		return 0, false
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			return max(ri.GetRetryDelay().AsDuration(), 0), true
		}
	}
	return 0, false
}

// dropParts forgets the parts of an unfinished snapshot.
func (m *Mirror) dropParts() {
	m.writeMu.Lock()
	m.parts.drop()
	m.writeMu.Unlock()
}

// apply applies one message of the stream, in Run's goroutine, with the
// bans of a snapshot part that the watch codec read apart (nil when
// none). writeMu makes it the one writer of the state (readers take no
// lock).
func (m *Mirror) apply(resp *pb.WatchResponse, bans []wireBan) error {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	now := m.clock().UnixNano()
	cur := m.state.Load()
	if _, ok := resp.GetPayload().(*pb.WatchResponse_Snapshot); !ok && m.parts.pending() {
		return fmt.Errorf("client: a message at revision %d in the middle of a snapshot's parts", resp.GetRevision())
	}
	switch resp.GetPayload().(type) {
	case *pb.WatchResponse_Snapshot:
		// The state, the revision, staleness, Stats and WaitSynced move
		// only with the last part, all at once.
		var gen uint64
		if cur != nil {
			gen = cur.keyGen
		}
		next, parts, err := m.parts.add(resp, bans, gen)
		if err != nil || next == nil {
			return err
		}
		m.state.Store(next)
		m.lastHeard.Store(now)
		m.stats.resets.Add(1)
		m.syncOnce.Do(func() { close(m.synced) })
		if cur != nil {
			m.log.Info("portcullis: mirror reset from a snapshot", "store_id", next.storeID, "revision", next.rev,
				"parts", parts, "previous_store_id", cur.storeID, "previous_revision", cur.rev)
		}
		m.tracker.recheckAll(next, now)
	case *pb.WatchResponse_Change:
		p := resp.GetChange()
		switch {
		case cur == nil || resp.GetStoreId() != cur.storeID:
			// The authority starts every stream of another store with a
			// snapshot; a change without one is not ours to apply.
			return fmt.Errorf("client: change for store %q at revision %d without a snapshot", resp.GetStoreId(), resp.GetRevision())
		case resp.GetRevision() <= cur.rev:
			m.lastHeard.Store(now) // already applied: a resend
			return nil
		}
		b := cur.child()
		events := p.GetEvents()
		for _, e := range events {
			b.applyEvent(e)
		}
		b.s.rev = resp.GetRevision()
		m.state.Store(b.s)
		m.lastHeard.Store(now)
		m.stats.changes.Add(1)
		m.stats.events.Add(int64(len(events)))
		m.tracker.notify(b.s, events, now)
		if m.opts.OnEvent != nil {
			for _, e := range events {
				m.opts.OnEvent(e)
			}
		}
	case *pb.WatchResponse_Checkpoint:
		switch {
		case cur == nil || resp.GetStoreId() != cur.storeID:
		case resp.GetRevision() > cur.rev:
			// "Nothing newer than R" while we are before R: we missed a
			// change. Never expected; resuming from our revision repairs it.
			return fmt.Errorf("client: checkpoint at revision %d, mirror at %d", resp.GetRevision(), cur.rev)
		default:
			m.lastHeard.Store(now)
			m.stats.checkpoints.Add(1)
			m.noteAuthorityRevision(resp.GetRevision())
		}
	}
	m.prune(now)
	if st := m.state.Load(); st != cur && (cur == nil || st.rev != cur.rev) {
		m.progress.advanced()
	}
	return nil
}

// prune drops what has expired, at most once per PruneInterval. The
// caller holds writeMu.
func (m *Mirror) prune(now int64) {
	if now-m.lastPrune < int64(m.opts.PruneInterval) {
		return
	}
	m.lastPrune = now
	cur := m.state.Load()
	if cur == nil {
		return
	}
	if next := cur.pruned(now); next != cur {
		m.state.Store(next)
		m.stats.prunes.Add(1)
	}
}
