package robustness

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// eventsOf reduces a change's events for the checker.
func eventsOf(evs []*pb.Event) []WatchEvent {
	out := make([]WatchEvent, 0, len(evs))
	for _, e := range evs {
		switch k := e.GetKind().(type) {
		case *pb.Event_BanCreated:
			out = append(out, WatchEvent{Kind: BanCreated, ID: k.BanCreated.GetBanId(), User: k.BanCreated.GetSubject().GetUserId()})
		case *pb.Event_BanLifted:
			out = append(out, WatchEvent{Kind: BanLifted, ID: k.BanLifted.GetBanId(), User: k.BanLifted.GetSubject().GetUserId()})
		case *pb.Event_SessionRevoked:
			out = append(out, WatchEvent{Kind: SessionRevoked, ID: k.SessionRevoked.GetSessionId(), User: k.SessionRevoked.GetUserId()})
		default:
			out = append(out, WatchEvent{Kind: Other})
		}
	}
	return out
}

// rawWatcher is a Watch subscriber without the client library: it opens
// the stream, logs every message, and on any error resumes after the last
// revision it got, as the contract tells a subscriber to.
type rawWatcher struct {
	name string
	c    *client.Client

	mu      sync.Mutex
	log     []Msg
	store   string
	rev     int64
	streams int
}

func (w *rawWatcher) add(m Msg) {
	w.mu.Lock()
	w.log = append(w.log, m)
	w.mu.Unlock()
}

func (w *rawWatcher) position() (string, int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.store, w.rev
}

// Log returns the watcher's log so far.
func (w *rawWatcher) Log() WatchLog {
	w.mu.Lock()
	defer w.mu.Unlock()
	return WatchLog{Name: w.name, Msgs: append([]Msg(nil), w.log...)}
}

func (w *rawWatcher) run(ctx context.Context) {
	for ctx.Err() == nil {
		w.follow(ctx)
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

func (w *rawWatcher) follow(ctx context.Context) {
	store, rev := w.position()
	s, err := w.c.Events.Watch(ctx, &pb.WatchRequest{AfterRevision: rev, StoreId: store}, grpc.MaxCallRecvMsgSize(256<<20))
	if err != nil {
		return
	}
	first := true
	var parts []Msg
	for {
		m, err := s.Recv()
		if err != nil {
			return
		}
		if first {
			// Logged once the stream answers: a stream that never opened
			// asked nothing.
			w.add(Msg{Kind: Start, StoreID: store, Revision: rev})
			w.mu.Lock()
			w.streams++
			w.mu.Unlock()
			first = false
		}
		switch p := m.GetPayload().(type) {
		case *pb.WatchResponse_Snapshot:
			parts = append(parts, Msg{})
			if p.Snapshot.GetMore() {
				continue
			}
			parts = nil
			w.mu.Lock()
			w.log = append(w.log, Msg{Kind: Snapshot, StoreID: m.GetStoreId(), Revision: m.GetRevision()})
			w.store, w.rev = m.GetStoreId(), m.GetRevision()
			w.mu.Unlock()
		case *pb.WatchResponse_Change:
			w.mu.Lock()
			w.log = append(w.log, Msg{Kind: Change, StoreID: m.GetStoreId(), Revision: m.GetRevision(), Events: eventsOf(p.Change.GetEvents())})
			w.store, w.rev = m.GetStoreId(), m.GetRevision()
			w.mu.Unlock()
		case *pb.WatchResponse_Checkpoint:
			w.add(Msg{Kind: Checkpoint, StoreID: m.GetStoreId(), Revision: m.GetRevision()})
		}
	}
}

// readResume opens a fresh stream after rev and reads it up to its
// caught-up checkpoint, for CheckResume.
func readResume(ctx context.Context, c *client.Client, store string, rev int64) ([]Msg, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := c.Events.Watch(ctx, &pb.WatchRequest{AfterRevision: rev, StoreId: store}, grpc.MaxCallRecvMsgSize(256<<20))
	if err != nil {
		return nil, err
	}
	var out []Msg
	for {
		m, err := s.Recv()
		if err != nil {
			return out, err
		}
		switch p := m.GetPayload().(type) {
		case *pb.WatchResponse_Snapshot:
			if !p.Snapshot.GetMore() {
				out = append(out, Msg{Kind: Snapshot, StoreID: m.GetStoreId(), Revision: m.GetRevision()})
			}
		case *pb.WatchResponse_Change:
			out = append(out, Msg{Kind: Change, StoreID: m.GetStoreId(), Revision: m.GetRevision(), Events: eventsOf(p.Change.GetEvents())})
		case *pb.WatchResponse_Checkpoint:
			return append(out, Msg{Kind: Checkpoint, StoreID: m.GetStoreId(), Revision: m.GetRevision()}), nil
		}
	}
}

// mirrorLog follows a client.Mirror through OnEvent: each applied event
// with the mirror's revision (the state that includes it is in place when
// OnEvent runs), grouped into changes by revision; a reset (the mirror's
// Resets counter moved) is logged as a Snapshot of unknown revision.
type mirrorLog struct {
	name   string
	m      *client.Mirror
	mu     sync.Mutex
	log    []Msg
	resets int64
}

func startMirror(ctx context.Context, name string, c *client.Client, wg *sync.WaitGroup) *mirrorLog {
	ml := &mirrorLog{name: name}
	ml.m = client.NewMirror(c, client.MirrorOptions{
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		StaleAfter: time.Hour,
		Logger:     slog.New(slog.DiscardHandler), // reconnections are the point here
		Identity:   client.MirrorIdentity{Service: "robustness", InstanceID: name},
		OnEvent:    ml.onEvent,
	})
	wg.Add(1)
	go func() { defer wg.Done(); ml.m.Run(ctx) }()
	return ml
}

func (ml *mirrorLog) onEvent(e *pb.Event) {
	st := ml.m.Stats()
	ml.mu.Lock()
	defer ml.mu.Unlock()
	if st.Resets != ml.resets {
		ml.log = append(ml.log, Msg{Kind: Snapshot, StoreID: st.StoreID, Revision: -1})
		ml.resets = st.Resets
	}
	ev := eventsOf([]*pb.Event{e})
	if n := len(ml.log); n > 0 && ml.log[n-1].Kind == Change && ml.log[n-1].Revision == st.Revision {
		ml.log[n-1].Events = append(ml.log[n-1].Events, ev...)
		return
	}
	ml.log = append(ml.log, Msg{Kind: Change, StoreID: st.StoreID, Revision: st.Revision, Events: ev})
}

// Log returns the mirror's log so far.
func (ml *mirrorLog) Log() WatchLog {
	ml.mu.Lock()
	defer ml.mu.Unlock()
	out := make([]Msg, len(ml.log))
	for i, m := range ml.log {
		m.Events = append([]WatchEvent(nil), m.Events...)
		out[i] = m
	}
	return WatchLog{Name: ml.name, Msgs: out}
}
