package server

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/fleet"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

var (
	errShuttingDown = errors.New("the authority is shutting down; reconnect and resume from your last revision")
	errTooSlow      = errors.New("subscriber too slow: a message waited longer than the send timeout; reconnect and resume from your last revision")
)

type eventService struct {
	pb.UnimplementedEventServiceServer
	*Server
}

// Watch streams snapshot-then-changes, a snapshot in parts of at most
// Options.SnapshotPartSize (snapshotparts.go). The stream reads the store's event
// log through its own storage.Watcher, so a slow subscriber holds only its
// position: it never blocks a writer or another subscriber. A send that
// waits longer than Options.SendTimeout ends the stream with
// SUBSCRIBER_TOO_SLOW; the subscriber resumes from its last revision.
func (s eventService) Watch(req *pb.WatchRequest, stream pb.EventService_WatchServer) error {
	ctx := stream.Context()
	if req.GetAfterRevision() < 0 {
		return s.status(ctx, &authority.FieldError{Field: "after_revision", Msg: "must not be negative"})
	}
	actor := actorFrom(ctx)
	var keyID string
	if k, ok := ctx.Value(callerKey{}).(storage.APIKey); ok {
		keyID = k.ID
	}
	release, err := s.watchers.acquire(keyID, s.opts.Limits.MaxWatchersPerKey)
	if err != nil {
		return err
	}
	defer release()
	sub := &fleet.Subscriber{Caller: actor.Name, KeyID: keyID, Peer: actor.Addr, Since: s.now(), Connected: time.Now(), Identity: identity(req.GetIdentity())}
	defer s.fleet.Add(sub)()

	// The sending loop runs in its own goroutine so that this one can end
	// the stream when a send is stuck (returning cancels the stream's
	// context, which unblocks the send) or when the server shuts down.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	var sending atomic.Int64 // unix nanos when the current send began; 0 when idle
	go func() { done <- s.watchLoop(ctx, req, stream, sub, &sending) }()

	tick := time.NewTicker(min(s.opts.SendTimeout, progressTimeout(s.opts)) / 4)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return s.status(ctx, err)
		case <-s.closing:
			return s.status(ctx, errShuttingDown)
		case <-tick.C:
			if began := sending.Load(); began != 0 && time.Since(time.Unix(0, began)) > s.opts.SendTimeout {
				s.log.Warn("watch subscriber too slow; ending its stream", "caller", actor.Name, "peer", actor.Addr, "revision", sub.Revision())
				return s.status(ctx, errTooSlow)
			}
			if err := s.fleet.Deadline(sub, time.Now()); err != nil {
				s.log.Warn("watch subscriber stopped reporting progress; ending its stream", "caller", actor.Name, "peer", actor.Addr,
					"subscriber_id", sub.ID(), "applied_revision", sub.Applied(), "loading", sub.Loading(), "error", err)
				return s.status(ctx, err)
			}
		}
	}
}

func (s eventService) watchLoop(ctx context.Context, req *pb.WatchRequest, stream pb.EventService_WatchServer, sub *fleet.Subscriber, sending *atomic.Int64) error {
	storeID := s.auth.StoreID()
	// The caller's API key is re-checked at least once per checkpoint
	// interval, so that revoking it ends the stream within about one.
	lastAuth := time.Now()
	firstID := sub.ID()
	plain := sendsPlain(stream.Context())
	// send sends a checkpoint (resp, at revision rev) or a message shared
	// with the other subscribers (shared). The send timeout applies to each
	// message. The caller offers a revision (sub.Offer) before the
	// message that completes it goes out: a change or checkpoint, a
	// snapshot's last part. After the send would be too late: a fast
	// mirror can apply and report it before SendMsg returns, and its report
	// would be refused as beyond what was sent.
	send := func(rev int64, resp *pb.WatchResponse, shared *sharedMsg) error {
		if time.Since(lastAuth) >= s.opts.CheckpointInterval {
			if err := s.reauthenticate(ctx); err != nil {
				return err
			}
			lastAuth = time.Now()
		}
		var msg any = resp
		if shared != nil {
			var err error
			if msg, err = shared.msg(stream, plain, firstID); err != nil {
				return err
			}
		} else {
			resp.StoreId, resp.Revision, resp.ServerTime = storeID, rev, timestamppb.New(s.now())
			resp.SubscriberId = firstID
		}
		firstID = "" // the first response only
		sending.Store(time.Now().UnixNano())
		err := stream.SendMsg(msg)
		sending.Store(0)
		return err
	}
	deliver := func(rev int64, resp *pb.WatchResponse, shared *sharedMsg) error {
		sub.Offer(rev)
		return send(rev, resp, shared)
	}

	var w storage.Watcher
	var err error
	if after := req.GetAfterRevision(); after > 0 && (req.GetStoreId() == "" || req.GetStoreId() == storeID) {
		w, err = s.auth.Watch(ctx, after)
		if err != nil && !errors.Is(err, storage.ErrCompacted) && !errors.Is(err, storage.ErrFutureRevision) {
			return err
		}
	}
	// No usable position: start from a snapshot. A compaction between the
	// snapshot and the watch (rare) just takes another snapshot.
	// A reporting subscriber that left its last snapshots unacknowledged
	// waits before it gets another (snapbackoff.go).
	key := backoffKey(sub)
	for w == nil {
		if delay, n := s.snapBackoff.refuse(key, time.Now()); delay > 0 {
			s.log.Warn("watch subscriber asked for a snapshot too soon after ones it did not acknowledge; refused",
				"caller", sub.Caller, "peer", sub.Peer, "instance_id", sub.Identity.InstanceID, "unacknowledged", n, "retry_in", delay)
			return &snapshotTooSoonError{unacked: n, delay: delay}
		}
		// The subscriber loads from here (building a large snapshot takes
		// time too) until it reports the snapshot's revision: the load
		// timeout applies, not the progress timeout (fleet.Fleet.Deadline).
		sub.SetLoading(fleet.LoadingUnknown)
		snap, err := s.sharedSnapshot(ctx)
		if err != nil {
			return err
		}
		rev := snap.rev
		w, err = s.auth.Watch(ctx, rev)
		if errors.Is(err, storage.ErrCompacted) {
			continue
		} else if err != nil {
			return err
		}
		sub.SetLoading(rev)
		s.snapBackoff.sent(key, time.Now())
		// The parts go out back to back, each as soon as it is encoded; the
		// subscriber is at rev only once it has the last one, which offers
		// it (before the send: see send).
		for part, err := range snap.each(ctx) {
			if err == nil {
				if part.last {
					sub.Offer(rev)
				}
				err = send(rev, nil, part)
			}
			if err != nil {
				w.Close()
				return err
			}
		}
		s.metrics.snapshotsSent.Inc()
	}
	defer w.Close()
	sub.Offer(w.Revision())

	// The caught-up marker: once the watcher has delivered everything up to
	// the store's revision as of now (right after a snapshot's last part,
	// or after a resume's missed changes), a checkpoint goes out at once,
	// so that a subscriber knows its catch-up is complete without waiting
	// a checkpoint interval. Read after the watcher exists, so that the
	// watcher is sure to reach it.
	caughtUpAt, err := s.auth.Revision(ctx)
	if err != nil {
		return err
	}
	caughtUp := false
	checkpoint := func() error {
		caughtUp = true
		return deliver(w.Revision(), &pb.WatchResponse{Payload: &pb.WatchResponse_Checkpoint{Checkpoint: &pb.Checkpoint{}}}, nil)
	}

	for {
		if !caughtUp && w.Revision() >= caughtUpAt {
			if err := checkpoint(); err != nil {
				return err
			}
		}
		waitCtx, cancel := context.WithTimeout(ctx, s.opts.CheckpointInterval)
		change, err := w.Next(waitCtx)
		cancel()
		switch {
		case err == nil:
			if err := deliver(change.Revision, nil, s.sharedChange(storeID, change)); err != nil {
				return err
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			// Nothing new within the interval: tell the subscriber how fresh
			// it is.
			if err := checkpoint(); err != nil {
				return err
			}
		case errors.Is(err, storage.ErrCompacted):
			return fmt.Errorf("%w: revision %d left the retained log while the stream was behind", errTooSlow, w.Revision())
		default:
			return err
		}
	}
}

func changePB(c storage.Change, now time.Time) *pb.Change {
	out := &pb.Change{Events: make([]*pb.Event, 0, len(c.Events))}
	for _, e := range c.Events {
		if ev, ok := eventPB(e, now); ok {
			out.Events = append(out.Events, ev)
		}
	}
	return out
}
