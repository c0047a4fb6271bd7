package agent

import (
	"math/rand/v2"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/portcullis-dev/portcullis/client"
	"github.com/portcullis-dev/portcullis/client/mirrormetrics"
)

// door is a front door of the agent.
type door int

const (
	doorForwardAuth door = iota
	doorExtAuthz
	doorIntrospect
	numDoors
)

// doorNames label the doors in metrics.
var doorNames = [numDoors]string{"forward_auth", "ext_authz", "introspect"}

// metrics are the agent's own Prometheus metrics, on a registry of its own
// with the mirror's (lag, staleness) and the process's. The counters and
// histograms of the hot path are looked up once, here, so that a decision
// costs two atomic adds and no label hashing.
type metrics struct {
	reg       *prometheus.Registry
	decisions *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	doors     [numDoors]doorMetrics
}

type doorMetrics struct {
	allowed, public prometheus.Counter
	latency         prometheus.Observer
}

func newMetrics(m Mirror) *metrics {
	x := &metrics{
		reg: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_agent_decisions_total",
			Help: "Decisions by front door (forward_auth, ext_authz, introspect), result (allowed, public, refused) and refusal reason (the ErrorInfo reason; empty when not refused).",
		}, []string{"door", "result", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portcullis_agent_decision_seconds",
			Help:    "Time to decide a request, from reading it to the answer's headers, by front door; sampled, one decision in 64.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10), // 1µs to 262ms
		}, []string{"door"}),
	}
	x.reg.MustRegister(x.decisions, x.latency, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cm, ok := m.(*client.Mirror); ok {
		x.reg.MustRegister(mirrormetrics.NewCollector(cm))
	}
	for i, d := range doorNames {
		x.doors[i] = doorMetrics{
			allowed: x.decisions.WithLabelValues(d, "allowed", ""),
			public:  x.decisions.WithLabelValues(d, "public", ""),
			latency: x.latency.WithLabelValues(d),
		}
	}
	return x
}

// timer times a decision for the latency histogram: one in
// latencySample decisions, as reading the clock twice costs more on some
// machines (virtual ones especially) than the rest of the bookkeeping.
// The histogram is thus a sample; the decision counters are exact.
type timer struct {
	start time.Time
	on    bool
}

const latencySample = 64

func startTimer() timer {
	if rand.Uint32()%latencySample != 0 {
		return timer{}
	}
	return timer{start: time.Now(), on: true}
}

// observe counts one decision of door, timed by t; public when it matched
// a public route; r is its refusal when refused.
func (x *metrics) observe(door door, public bool, r *refusal, t timer) {
	dm := &x.doors[door]
	if t.on {
		dm.latency.Observe(time.Since(t.start).Seconds())
	}
	switch {
	case r != nil:
		x.decisions.WithLabelValues(doorNames[door], "refused", strings.ToUpper(r.Reason)).Inc()
	case public:
		dm.public.Inc()
	default:
		dm.allowed.Inc()
	}
}
