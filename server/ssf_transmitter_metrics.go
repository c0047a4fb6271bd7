package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-dev/portcullis/internal/transmitter"
)

// TransmitterCollector exports the Shared Signals transmitter's delivery,
// for serve to register on the /metrics registry:
//
//   - portcullis_ssf_sets_total{stream,result}: this replica's SET
//     deliveries by result: delivered (the receiver took it), failed (a
//     push attempt that will be retried), skipped (refused for good, 400);
//   - portcullis_ssf_poll_requests_total{stream}: poll requests served by
//     this replica;
//   - portcullis_ssf_stream_status{stream,status}: 1 for the stream's
//     current status (enabled, paused, disabled), from the store;
//   - portcullis_ssf_push_lease{stream}: for a push stream, 1 when this
//     replica holds its push lease (it is the one delivering it), else 0.
func TransmitterCollector(t *transmitter.Transmitter) prometheus.Collector {
	return transmitterCollector{t}
}

type transmitterCollector struct{ t *transmitter.Transmitter }

var (
	ssfSetsDesc = prometheus.NewDesc("portcullis_ssf_sets_total",
		"Security Event Tokens of a Shared Signals stream by delivery result on this replica.", []string{"stream", "result"}, nil)
	ssfPollsDesc = prometheus.NewDesc("portcullis_ssf_poll_requests_total",
		"Poll requests of a Shared Signals stream served by this replica.", []string{"stream"}, nil)
	ssfStatusDesc = prometheus.NewDesc("portcullis_ssf_stream_status",
		"1 for the Shared Signals stream's current status.", []string{"stream", "status"}, nil)
	ssfLeaseDesc = prometheus.NewDesc("portcullis_ssf_push_lease",
		"1 when this replica holds the Shared Signals push stream's lease (it delivers the stream).", []string{"stream"}, nil)
)

func (c transmitterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- ssfSetsDesc
	ch <- ssfPollsDesc
	ch <- ssfStatusDesc
	ch <- ssfLeaseDesc
}

func (c transmitterCollector) Collect(ch chan<- prometheus.Metric) {
	for _, n := range c.t.Counts() {
		ch <- prometheus.MustNewConstMetric(ssfSetsDesc, prometheus.CounterValue, float64(n.Delivered), n.StreamID, "delivered")
		ch <- prometheus.MustNewConstMetric(ssfSetsDesc, prometheus.CounterValue, float64(n.Failed), n.StreamID, "failed")
		ch <- prometheus.MustNewConstMetric(ssfSetsDesc, prometheus.CounterValue, float64(n.Skipped), n.StreamID, "skipped")
		ch <- prometheus.MustNewConstMetric(ssfPollsDesc, prometheus.CounterValue, float64(n.Polls), n.StreamID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	statuses, err := c.t.Statuses(ctx)
	if err != nil {
		return
	}
	for _, s := range statuses {
		ch <- prometheus.MustNewConstMetric(ssfStatusDesc, prometheus.GaugeValue, 1, s.StreamID, s.Status)
		if s.Push {
			held := 0.0
			if s.Pushing {
				held = 1
			}
			ch <- prometheus.MustNewConstMetric(ssfLeaseDesc, prometheus.GaugeValue, held, s.StreamID)
		}
	}
}
