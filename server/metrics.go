package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/rpcerr"
)

// Metrics are the authority's Prometheus metrics, served on /metrics of
// the HTTP listener:
//
//   - grpc_server_* (go-grpc-middleware providers/prometheus): RPCs started,
//     handled by code, handling time, stream messages, per method;
//   - portcullis_active_bans{kind}: active bans (user, ip, device), computed
//     from the store at scrape time;
//   - portcullis_sessions_total{op}: sessions created, refreshed, revoked
//     (revoked counts every revocation: by RevokeSession, RevokeUserSessions,
//     a ban, or theft detection);
//   - portcullis_rejections_total{reason}: calls refused, by ErrorInfo reason
//     (USER_BANNED, API_KEY_INVALID, ...);
//   - portcullis_watch_subscribers: open Watch streams;
//   - portcullis_snapshots_sent_total: snapshots sent whole on Watch
//     streams (a mirror that keeps needing one shows here);
//   - portcullis_events_total{kind}: events committed to the event log
//     (rate() of it is events per second);
//   - portcullis_swept_total{kind}: records deleted by the sweeper
//     (sweeper.go): session, refresh_token;
//   - portcullis_store_commit_seconds: latency of durable store commits
//     (store.Update, fsync included), when the store is wrapped with
//     InstrumentStore;
//   - portcullis_issuer_fetches_total{issuer,result},
//     portcullis_issuer_fetch_failing{issuer} and
//     portcullis_issuer_last_success_timestamp_seconds{issuer}: the fetches
//     of external issuers' keys (issuermetrics.go);
//   - the Go runtime and process collectors.
//
// Each Metrics has its own registry, so several servers in one process
// (tests) do not collide.
type Metrics struct {
	reg  *prometheus.Registry
	grpc *grpcprom.ServerMetrics

	sessions      *prometheus.CounterVec
	rejections    *prometheus.CounterVec
	events        *prometheus.CounterVec
	swept         *prometheus.CounterVec
	commitSeconds *prometheus.HistogramVec
	snapshotsSent prometheus.Counter

	// server is set by New, for the scrape-time collectors.
	server *Server
}

// NewMetrics returns the metrics of one authority process. Pass it in
// Options.Metrics, and wrap the store given to authority.New with
// InstrumentStore to get commit latency and event counts.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		grpc: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets([]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}))),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_sessions_total", Help: "Sessions created, refreshed and revoked, by op.",
		}, []string{"op"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_rejections_total", Help: "Calls refused by the authority, by ErrorInfo reason.",
		}, []string{"reason"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_events_total", Help: "Events committed to the event log, by kind.",
		}, []string{"kind"}),
		swept: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_swept_total", Help: "Records deleted by the sweeper, by kind (session, refresh_token, audit).",
		}, []string{"kind"}),
		commitSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portcullis_store_commit_seconds",
			Help:    "Latency of durable store commits (Update, fsync included), by result.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5},
		}, []string{"result"}),
		snapshotsSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "portcullis_snapshots_sent_total",
			Help: "Snapshots sent whole (every part) on Watch streams; one per subscriber that starts from one.",
		}),
	}
	for _, op := range []string{"created", "refreshed", "revoked"} {
		m.sessions.WithLabelValues(op)
	}
	for _, k := range []string{"session", "refresh_token", "audit"} {
		m.swept.WithLabelValues(k)
	}
	for _, k := range []storage.EventKind{storage.EventBanCreated, storage.EventBanLifted, storage.EventSessionRevoked,
		storage.EventKeyAdded, storage.EventKeyRetired} {
		m.events.WithLabelValues(string(k))
	}
	m.reg.MustRegister(m.grpc, m.sessions, m.rejections, m.events, m.swept, m.commitSeconds, m.snapshotsSent,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&scrapeCollector{m: m})
	return m
}

// Registry is the registry /metrics serves; register more collectors on
// it.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// interceptors returns the RPC metrics interceptors: grpc_server_* and
// Portcullis' own counters.
func (m *Metrics) unaryInterceptors() []grpc.UnaryServerInterceptor {
	return []grpc.UnaryServerInterceptor{m.grpc.UnaryServerInterceptor(), m.unary}
}

func (m *Metrics) streamInterceptors() []grpc.StreamServerInterceptor {
	return []grpc.StreamServerInterceptor{m.grpc.StreamServerInterceptor(), m.stream}
}

func (m *Metrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err != nil {
		m.rejected(err)
		return resp, err
	}
	switch info.FullMethod {
	case pb.SessionService_CreateSession_FullMethodName:
		m.sessions.WithLabelValues("created").Inc()
	case pb.SessionService_RefreshSession_FullMethodName:
		m.sessions.WithLabelValues("refreshed").Inc()
	}
	return resp, nil
}

func (m *Metrics) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	err := handler(srv, ss)
	if err != nil {
		m.rejected(err)
	}
	return err
}

// rejected counts a refusal by the reason of its ErrorInfo.
func (m *Metrics) rejected(err error) {
	st, ok := status.FromError(err)
	if !ok {
		return
	}
	if info := rpcerr.Parse(st).Info; info != nil {
		m.rejections.WithLabelValues(info.GetReason()).Inc()
	}
}

// scrapeCollector computes gauges from the server's state at scrape time,
// so they are never out of step with the store.
type scrapeCollector struct{ m *Metrics }

var (
	activeBansDesc = prometheus.NewDesc("portcullis_active_bans", "Active bans, by subject kind.", []string{"kind"}, nil)
	revokedSetDesc = prometheus.NewDesc("portcullis_revoked_sessions_published",
		"Revoked sessions whose access tokens may still be unexpired (the mirrors' revoked set).", nil, nil)
	subscribersDesc = prometheus.NewDesc("portcullis_watch_subscribers", "Open Watch streams.", nil, nil)
	scrapeErrorDesc = prometheus.NewDesc("portcullis_scrape_error", "1 when the last scrape could not read the store.", nil, nil)
)

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- activeBansDesc
	ch <- revokedSetDesc
	ch <- subscribersDesc
	ch <- scrapeErrorDesc
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.server
	if s == nil {
		return
	}
	n := s.fleet.Len()
	ch <- prometheus.MustNewConstMetric(subscribersDesc, prometheus.GaugeValue, float64(n))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	snap, err := s.auth.Snapshot(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(scrapeErrorDesc, prometheus.GaugeValue, 1)
		return
	}
	ch <- prometheus.MustNewConstMetric(scrapeErrorDesc, prometheus.GaugeValue, 0)
	counts := map[storage.SubjectKind]int{storage.SubjectUser: 0, storage.SubjectIP: 0, storage.SubjectDevice: 0}
	for _, b := range snap.Bans {
		counts[b.Kind]++
	}
	for k, v := range counts {
		ch <- prometheus.MustNewConstMetric(activeBansDesc, prometheus.GaugeValue, float64(v), string(k))
	}
	ch <- prometheus.MustNewConstMetric(revokedSetDesc, prometheus.GaugeValue, float64(len(snap.RevokedSessions)))
}

// InstrumentStore wraps st so that every Update is timed
// (portcullis_store_commit_seconds) and the events it commits are counted
// (portcullis_events_total, and session revocations in
// portcullis_sessions_total{op="revoked"}). Everything else passes through,
// storage.Presence included when st has it (the server looks for it).
func (m *Metrics) InstrumentStore(st storage.Store) storage.Store {
	is := &instrumentedStore{Store: st, m: m}
	if p, ok := st.(storage.Presence); ok {
		return instrumentedPresenceStore{instrumentedStore: is, Presence: p}
	}
	return is
}

type instrumentedPresenceStore struct {
	*instrumentedStore
	storage.Presence
}

type instrumentedStore struct {
	storage.Store
	m *Metrics
}

func (s *instrumentedStore) Update(ctx context.Context, fn func(storage.Tx) error) (int64, error) {
	var counts map[storage.EventKind]int
	start := time.Now()
	rev, err := s.Store.Update(ctx, func(tx storage.Tx) error {
		counts = map[storage.EventKind]int{} // fn may run more than once
		return fn(countingTx{Tx: tx, counts: counts})
	})
	result := "ok"
	if err != nil {
		result = "error"
		if ctx.Err() != nil || errors.Is(err, storage.ErrClosed) {
			result = "aborted"
		}
	}
	s.m.commitSeconds.WithLabelValues(result).Observe(time.Since(start).Seconds())
	if err == nil {
		for k, n := range counts {
			s.m.events.WithLabelValues(string(k)).Add(float64(n))
			if k == storage.EventSessionRevoked {
				s.m.sessions.WithLabelValues("revoked").Add(float64(n))
			}
		}
	}
	return rev, err
}

type countingTx struct {
	storage.Tx
	counts map[storage.EventKind]int
}

func (t countingTx) Emit(e storage.Event) error {
	if err := t.Tx.Emit(e); err != nil {
		return err
	}
	t.counts[e.Kind]++
	return nil
}
