package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/rpcerr"
)

// The progress protocol (see StreamProgress in event_service.proto): a
// Watch request with an identity gets a subscriber_id in its first
// response; the mirror reports the revision it has applied on a
// StreamProgress stream; writes with a wait block on the registry below until
// every reporting subscriber of this replica has reached the write's
// revision. Everything is in memory and per replica; when the store is
// shared, each replica also publishes a summary of its mirrors' progress
// through it (fleet.go), and waits count every replica's mirrors.

// MaxWait bounds the wait of CreateBan, LiftBan, RevokeSession and
// RevokeUserSessions.
const MaxWait = 60 * time.Second

// subscriber is one open Watch stream, for ListSubscribers and waits.
type subscriber struct {
	caller string
	keyID  string // the API key it authenticated with; only it may report
	peer   string
	since  time.Time // by the authority's clock, for ListSubscribers
	// connected is since by the wall clock, which the progress timeout is
	// measured with (the authority's clock may stand still in tests, or
	// jump).
	connected time.Time
	// revision is the last revision offered to it: stored before the
	// message that brings the subscriber to it is sent (a change, a
	// checkpoint, a snapshot's last part), so that a report of it, which
	// can come as soon as the message is out, is never refused. No report
	// may exceed it (errRevisionNotSent).
	revision atomic.Int64

	// Set for subscribers that sent an identity (reporting ones).
	id       string
	identity *pb.MirrorIdentity
	applied  atomic.Int64  // the last revision it reported applied
	reported atomic.Int64  // unix ns (wall clock) of its last report; 0: none
	gone     chan struct{} // closed when its stream ends
	// loading is the revision of the snapshot the stream began with until
	// the subscriber reports it (or later), loadingUnknown while the
	// snapshot is being built, 0 otherwise: while it loads, the load
	// timeout applies instead of the progress timeout (progressDeadline).
	loading atomic.Int64
}

// loadingUnknown is subscriber.loading while its snapshot is being built:
// no report can reach it.
const loadingUnknown = math.MaxInt64

func (s *subscriber) reporting() bool { return s.id != "" }

// lastHeard is when the subscriber last reported, or connected (wall
// clock).
func (s *subscriber) lastHeard() time.Time {
	if ns := s.reported.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return s.connected
}

// subscribers is the registry of one replica's Watch streams.
type subscribers struct {
	mu   sync.Mutex
	next int
	all  map[int]*subscriber
	byID map[string]*subscriber
	// changed is closed and replaced whenever a subscriber reports or
	// leaves: waiters re-examine their set then, and only then.
	changed chan struct{}
}

// add registers s and returns the function that removes it. A reporting
// subscriber gets its ID here.
func (r *subscribers) add(s *subscriber) func() {
	s.gone = make(chan struct{})
	if s.identity != nil {
		var b [12]byte
		rand.Read(b[:])
		s.id = "sub_" + hex.EncodeToString(b[:])
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.all == nil {
		r.all, r.byID = map[int]*subscriber{}, map[string]*subscriber{}
	}
	id := r.next
	r.next++
	r.all[id] = s
	if s.id != "" {
		r.byID[s.id] = s
	}
	return func() {
		r.mu.Lock()
		delete(r.all, id)
		if s.id != "" {
			delete(r.byID, s.id)
		}
		close(s.gone)
		r.notifyLocked()
		r.mu.Unlock()
	}
}

func (r *subscribers) notifyLocked() {
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
}

// changedCh returns the channel closed at the next report or departure.
// Take it before examining the subscribers, so that no change is missed.
func (r *subscribers) changedCh() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.changed == nil {
		r.changed = make(chan struct{})
	}
	return r.changed
}

// report records that subscriber id, of API key keyID, has applied rev,
// and returns it (nil when there is no such subscriber) and whether the
// report finished the loading of its snapshot. A revision beyond the one
// offered to the subscriber is refused and not recorded at all.
func (r *subscribers) report(id, keyID string, rev int64, now time.Time) (_ *subscriber, loaded bool, _ error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.byID[id]
	if !ok || s.keyID != keyID {
		return nil, false, nil
	}
	if sent := s.revision.Load(); rev > sent {
		return s, false, &revisionNotSentError{reported: rev, sent: sent}
	}
	if rev > s.applied.Load() {
		s.applied.Store(rev)
	}
	if l := s.loading.Load(); l != 0 && rev >= l {
		loaded = s.loading.CompareAndSwap(l, 0)
	}
	s.reported.Store(now.UnixNano())
	r.notifyLocked()
	return s, loaded, nil
}

var errRevisionNotSent = errors.New("progress report refused: the revision was never sent on this subscriber's stream")

// revisionNotSentError is errRevisionNotSent with the revisions, and the
// ErrorInfo metadata sent_revision.
type revisionNotSentError struct{ reported, sent int64 }

func (e *revisionNotSentError) Error() string {
	return fmt.Sprintf("%v (reported %d, sent %d)", errRevisionNotSent, e.reported, e.sent)
}

func (e *revisionNotSentError) Unwrap() error { return errRevisionNotSent }

func (e *revisionNotSentError) statusDetails() (map[string]string, time.Duration) {
	return map[string]string{rpcerr.MetaSentRev: strconv.FormatInt(e.sent, 10)}, 0
}

// reportingSet returns the reporting subscribers connected now.
func (r *subscribers) reportingSet() []*subscriber {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*subscriber, 0, len(r.byID))
	for _, s := range r.byID {
		out = append(out, s)
	}
	return out
}

func (r *subscribers) snapshot() []*subscriber {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*subscriber, 0, len(r.all))
	for _, s := range r.all {
		out = append(out, s)
	}
	return out
}

// subscriberPB describes s, with its lag behind current.
func subscriberPB(s *subscriber, current int64) *pb.Subscriber {
	out := &pb.Subscriber{Caller: s.caller, PeerAddress: s.peer, Revision: s.revision.Load(), ConnectTime: ts(s.since)}
	if s.reporting() {
		out.SubscriberId, out.Identity = s.id, s.identity
		out.AppliedRevision = s.applied.Load()
		out.Lag = max(current-out.AppliedRevision, 0)
		if ns := s.reported.Load(); ns != 0 {
			out.LastReportTime = ts(time.Unix(0, ns))
		}
	}
	return out
}

// currentRevision is the store's last committed revision.
func currentRevision(ctx context.Context, st storage.Store) (int64, error) {
	var rev int64
	err := st.View(ctx, func(tx storage.ReadTx) error { rev = tx.Revision(); return nil })
	return rev, err
}

func (s eventService) ListSubscribers(ctx context.Context, _ *pb.ListSubscribersRequest) (*pb.ListSubscribersResponse, error) {
	current, err := currentRevision(ctx, s.auth.Store())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	subs := s.subs.snapshot()
	out := &pb.ListSubscribersResponse{Revision: current, Subscribers: make([]*pb.Subscriber, 0, len(subs))}
	for _, sub := range subs {
		out.Subscribers = append(out.Subscribers, subscriberPB(sub, current))
	}
	return out, nil
}

// StreamProgress takes a mirror's progress reports as messages of one
// stream. The receiving loop runs in its own goroutine so that this one can
// end the stream when the Watch stream it reports for ends or the server
// shuts down (returning unblocks the loop's Recv).
func (s eventService) StreamProgress(stream pb.EventService_StreamProgressServer) error {
	ctx := stream.Context()
	var keyID string
	if k, ok := ctx.Value(callerKey{}).(storage.APIKey); ok {
		keyID = k.ID
	}
	// The subscriber reported for, each time it changes (not at each
	// report: this goroutine need not wake for every message).
	reporting := make(chan *subscriber, 1)
	done := make(chan error, 1)
	go func() {
		var last *subscriber
		for {
			req, err := stream.Recv()
			if err == io.EOF {
				current, err := currentRevision(ctx, s.auth.Store())
				if err == nil {
					err = stream.SendAndClose(&pb.StreamProgressResponse{CurrentRevision: current})
				}
				done <- err
				return
			} else if err != nil {
				done <- err
				return
			}
			sub, err := s.report(req.GetSubscriberId(), keyID, req.GetRevision())
			if err != nil {
				done <- err
				return
			}
			if sub != last {
				last = sub
				select { // keep only the latest
				case <-reporting:
				default:
				}
				reporting <- sub
			}
		}
	}()
	var gone <-chan struct{}
	for {
		select {
		case err := <-done:
			return s.status(ctx, err)
		case sub := <-reporting:
			gone = sub.gone
		case <-gone:
			return s.status(ctx, errSubscriberGone)
		case <-s.closing:
			return s.status(ctx, errShuttingDown)
		}
	}
}

var errSubscriberGone = fmt.Errorf("%w: the Watch stream this stream reports for has ended", authority.ErrNotFound)

// report records one progress report of a StreamProgress stream and
// returns the subscriber it was for.
func (s eventService) report(id, keyID string, rev int64) (*subscriber, error) {
	if rev < 0 {
		return nil, &authority.FieldError{Field: "revision", Msg: "must not be negative"}
	}
	sub, loaded, err := s.subs.report(id, keyID, rev, time.Now())
	if sub == nil {
		return nil, fmt.Errorf("%w: no Watch stream of this API key with subscriber_id %q on this authority replica", authority.ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	if loaded {
		s.snapBackoff.acked(backoffKey(sub))
	}
	return sub, nil
}

func (s eventService) GetRevision(ctx context.Context, _ *pb.GetRevisionRequest) (*pb.GetRevisionResponse, error) {
	st := s.auth.Store()
	current, err := currentRevision(ctx, st)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &pb.GetRevisionResponse{StoreId: st.StoreID(), Revision: current}, nil
}

// parseWait validates the wait field of a write, before the write.
func parseWait(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > MaxWait {
		return 0, &authority.FieldError{Field: "wait", Msg: fmt.Sprintf("must be a Go duration from 0s to %s (e.g. \"2s\"), not %q", MaxWait, v)}
	}
	return d, nil
}

// enforcement waits (up to wait, or until ctx ends) until every reporting
// subscriber connected now has applied rev, and every other replica known
// now (fleet.go) has published that all its mirrors have, and says how far
// it got. It wakes on local reports and on the other replicas' summaries,
// never on a timer. It never fails: the write is durable whatever the
// mirrors do. A zero wait still reports who has confirmed already.
func (s *Server) enforcement(ctx context.Context, rev int64, wait time.Duration) *pb.Enforcement {
	start := time.Now()
	set := s.subs.reportingSet()
	// The other replicas at the time of the write; one that appears later
	// serves mirrors that connected after the write, which get it in their
	// snapshot.
	// last holds each one's latest summary: what a replica that goes away
	// during the wait is reported with.
	last := maps.Clone(s.fleet.snapshot())
	replicas := slices.Sorted(maps.Keys(last))
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var confirmed int
	var laggards, disconnected []*subscriber
	var remote []*pb.ReplicaProgress
	for {
		changed, fleetChanged := s.subs.changedCh(), s.fleet.changedCh()
		confirmed, laggards, disconnected = 0, laggards[:0], disconnected[:0]
		for _, sub := range set {
			switch {
			case sub.applied.Load() >= rev:
				confirmed++
			case isClosed(sub.gone):
				disconnected = append(disconnected, sub)
			default:
				laggards = append(laggards, sub)
			}
		}
		var remoteDone bool
		remote, remoteDone = remoteProgress(replicas, last, s.fleet.snapshot(), rev)
		if len(laggards) == 0 && remoteDone {
			break
		}
		select {
		case <-changed:
			continue
		case <-fleetChanged:
			continue
		case <-timer.C:
		case <-ctx.Done():
		}
		break
	}
	out := &pb.Enforcement{Confirmed: int32(confirmed), Total: int32(len(set)), Revision: rev,
		Elapsed: durationpb.New(time.Since(start)), Replicas: remote, ReplicaId: s.replicaID}
	for _, r := range remote {
		out.Confirmed += r.Confirmed
		out.Total += r.Total
	}
	if len(laggards)+len(disconnected) > 0 {
		current, err := currentRevision(context.WithoutCancel(ctx), s.auth.Store())
		if err != nil {
			current = rev
		}
		for _, sub := range laggards {
			out.Laggards = append(out.Laggards, subscriberPB(sub, current))
		}
		for _, sub := range disconnected {
			out.Disconnected = append(out.Disconnected, subscriberPB(sub, current))
		}
	}
	return out
}

// remoteProgress is how far the mirrors of the replicas known at the write
// (ids) have got by the summaries in now, and whether all of them are
// done: every mirror a replica has now applied rev (mirrors that left it
// are not waited for), or the replica is gone (its presence expired), when
// it is reported with its summary in last. It records now's summaries of
// ids in last.
func remoteProgress(ids []string, last, now map[string]summary, rev int64) ([]*pb.ReplicaProgress, bool) {
	if len(ids) == 0 {
		return nil, true
	}
	out := make([]*pb.ReplicaProgress, 0, len(ids))
	done := true
	for _, id := range ids {
		sum, ok := now[id]
		if ok {
			last[id] = sum
		} else {
			sum = last[id]
		}
		p := &pb.ReplicaProgress{ReplicaId: id, Confirmed: int32(sum.atLeast(rev)), Total: int32(sum.Mirrors), Gone: !ok}
		if ok && p.Confirmed < p.Total {
			done = false
		}
		out = append(out, p)
	}
	return out, done
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// progressTimeout is how long a reporting subscriber may go without a
// report before its stream is ended.
func (s *Server) progressTimeout() time.Duration {
	if s.opts.ProgressTimeout > 0 {
		return s.opts.ProgressTimeout
	}
	return max(3*s.opts.CheckpointInterval, time.Second)
}

// loadTimeout replaces the progress timeout while a subscriber loads its
// snapshot: ten progress timeouts, at least the send timeout. A mirror
// that needs longer than the progress timeout to load a large snapshot
// (a busy node, a throttled container, a GC pause) must not be cut, or it
// reconnects, gets another snapshot, and never syncs; but one that never
// acknowledges (its reports go to another replica, it is wedged) must
// not stay waited for forever. A loading mirror that sends any report (the
// Go mirror sends a heartbeat every second while it loads) restarts the
// clock.
func (s *Server) loadTimeout() time.Duration {
	return max(10*s.progressTimeout(), s.opts.SendTimeout)
}

var errLoadTimeout = errors.New("subscriber neither acknowledged its snapshot nor reported within the load timeout; reconnect")

// progressDeadline ends the stream of a reporting subscriber that has
// been silent too long: longer than the progress timeout, or, while it
// loads its snapshot, than the load timeout.
func (s *Server) progressDeadline(sub *subscriber, now time.Time) error {
	if !sub.reporting() {
		return nil
	}
	silent := now.Sub(sub.lastHeard())
	if rev := sub.loading.Load(); rev != 0 {
		if silent > s.loadTimeout() {
			what := "its snapshot still being built"
			if rev != loadingUnknown {
				what = fmt.Sprintf("snapshot at revision %d", rev)
			}
			return fmt.Errorf("%w (%s, silent for %s)", errLoadTimeout, what, silent.Round(time.Millisecond))
		}
		return nil
	}
	if silent > s.progressTimeout() {
		return errNoProgress
	}
	return nil
}

// fleetCollector exports the mirrors' progress at scrape time.
type fleetCollector struct{ s *Server }

var (
	mirrorMaxLagDesc = prometheus.NewDesc("portcullis_mirror_max_lag_revisions",
		"The largest lag, in revisions, of a mirror reporting progress to this replica (0 when none).", nil, nil)
	mirrorsReportingDesc = prometheus.NewDesc("portcullis_mirrors_reporting",
		"Mirrors connected to this replica that report progress.", nil, nil)
)

func (c fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- mirrorMaxLagDesc
	ch <- mirrorsReportingDesc
}

func (c fleetCollector) Collect(ch chan<- prometheus.Metric) {
	set := c.s.subs.reportingSet()
	var maxLag int64
	if len(set) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if current, err := currentRevision(ctx, c.s.auth.Store()); err == nil {
			for _, sub := range set {
				maxLag = max(maxLag, current-sub.applied.Load())
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(mirrorMaxLagDesc, prometheus.GaugeValue, float64(maxLag))
	ch <- prometheus.MustNewConstMetric(mirrorsReportingDesc, prometheus.GaugeValue, float64(len(set)))
}

// registerFleetMetrics adds the mirror gauges to the server's registry
// (once per registry).
func (s *Server) registerFleetMetrics() {
	_ = s.metrics.reg.Register(fleetCollector{s: s})
}

// cloneIdentity keeps a copy of the request's identity, bounded in size.
func cloneIdentity(id *pb.MirrorIdentity) *pb.MirrorIdentity {
	if id == nil {
		return nil
	}
	c := proto.Clone(id).(*pb.MirrorIdentity)
	c.Service, c.InstanceId, c.Version = truncate(c.Service), truncate(c.InstanceId), truncate(c.Version)
	return c
}

func truncate(v string) string {
	const limit = 200
	if len(v) > limit {
		v = v[:limit]
	}
	return strings.ToValidUTF8(v, "")
}
