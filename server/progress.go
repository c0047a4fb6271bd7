package server

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/fleet"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

// The handlers of the progress protocol (see StreamProgress in
// event_service.proto). The registry of subscribers, their deadlines and
// the waits of writes are the domain's (internal/fleet); this file
// validates, calls it and converts.

// MaxWait bounds the wait of CreateBan, LiftBan, RevokeSession and
// RevokeUserSessions.
const MaxWait = 60 * time.Second

// identity converts a Watch request's identity for the registry.
func identity(id *pb.MirrorIdentity) *fleet.Identity {
	if id == nil {
		return nil
	}
	return &fleet.Identity{Service: id.GetService(), InstanceID: id.GetInstanceId(), Version: id.GetVersion()}
}

// subscriberPB describes s, with its lag behind current.
func subscriberPB(s *fleet.Subscriber, current int64) *pb.Subscriber {
	out := &pb.Subscriber{Caller: s.Caller, PeerAddress: s.Peer, Revision: s.Revision(), ConnectTime: ts(s.Since)}
	if s.Reporting() {
		id := s.Identity
		out.SubscriberId = s.ID()
		out.Identity = &pb.MirrorIdentity{Service: id.Service, InstanceId: id.InstanceID, Version: id.Version}
		out.AppliedRevision = s.Applied()
		out.Lag = max(current-out.AppliedRevision, 0)
		if t, ok := s.LastReport(); ok {
			out.LastReportTime = ts(t)
		}
	}
	return out
}

func (s eventService) ListSubscribers(ctx context.Context, _ *pb.ListSubscribersRequest) (*pb.ListSubscribersResponse, error) {
	current, err := s.auth.Revision(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	subs := s.fleet.Subscribers()
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
	reporting := make(chan *fleet.Subscriber, 1)
	done := make(chan error, 1)
	go func() {
		var last *fleet.Subscriber
		for {
			req, err := stream.Recv()
			if err == io.EOF {
				current, err := s.auth.Revision(ctx)
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
			gone = sub.Gone()
		case <-gone:
			return s.status(ctx, fleet.ErrSubscriberGone)
		case <-s.closing:
			return s.status(ctx, errShuttingDown)
		}
	}
}

// report records one progress report of a StreamProgress stream and
// returns the subscriber it was for.
func (s eventService) report(id, keyID string, rev int64) (*fleet.Subscriber, error) {
	if rev < 0 {
		return nil, &authority.FieldError{Field: "revision", Msg: "must not be negative"}
	}
	sub, loaded, err := s.fleet.Report(id, keyID, rev, time.Now())
	if err != nil {
		return nil, err
	}
	if loaded {
		s.snapBackoff.acked(backoffKey(sub))
	}
	return sub, nil
}

func (s eventService) GetRevision(ctx context.Context, _ *pb.GetRevisionRequest) (*pb.GetRevisionResponse, error) {
	current, err := s.auth.Revision(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &pb.GetRevisionResponse{StoreId: s.auth.StoreID(), Revision: current}, nil
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

// enforcement waits (fleet.Fleet.Wait) until the mirrors have applied rev
// and converts how far they got.
func (s *Server) enforcement(ctx context.Context, rev int64, wait time.Duration) *pb.Enforcement {
	e := s.fleet.Wait(ctx, rev, wait)
	out := &pb.Enforcement{Confirmed: int32(e.Confirmed), Total: int32(e.Total), Revision: rev,
		Elapsed: durationpb.New(e.Elapsed), ReplicaId: s.fleet.ReplicaID()}
	for _, r := range e.Replicas {
		out.Replicas = append(out.Replicas, &pb.ReplicaProgress{ReplicaId: r.ReplicaID, Confirmed: int32(r.Confirmed), Total: int32(r.Total), Gone: r.Gone})
		out.Confirmed += int32(r.Confirmed)
		out.Total += int32(r.Total)
	}
	if len(e.Laggards)+len(e.Disconnected) > 0 {
		current, err := s.auth.Revision(context.WithoutCancel(ctx))
		if err != nil {
			current = rev
		}
		for _, sub := range e.Laggards {
			out.Laggards = append(out.Laggards, subscriberPB(sub, current))
		}
		for _, sub := range e.Disconnected {
			out.Disconnected = append(out.Disconnected, subscriberPB(sub, current))
		}
	}
	return out
}

// progressTimeout is how long a reporting subscriber may go without a
// report before its stream is ended.
func progressTimeout(o Options) time.Duration {
	if o.ProgressTimeout > 0 {
		return o.ProgressTimeout
	}
	return max(3*o.CheckpointInterval, time.Second)
}

// loadTimeout replaces the progress timeout while a subscriber loads its
// snapshot (fleet.Fleet.Deadline says why): ten progress timeouts, at
// least the send timeout.
func loadTimeout(o Options) time.Duration {
	return max(10*progressTimeout(o), o.SendTimeout)
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
	set := c.s.fleet.Reporting()
	var maxLag int64
	if len(set) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if current, err := c.s.auth.Revision(ctx); err == nil {
			for _, sub := range set {
				maxLag = max(maxLag, current-sub.Applied())
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
