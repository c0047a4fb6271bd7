package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-dev/portcullis/internal/receiver"
)

// signalCollector exports what this replica's Shared Signals receiver
// took in, so that a transmitter sending SETs that are refused (a key it
// rotated away, a wrong audience) shows on a dashboard:
//
//   - portcullis_signals_received_total: SETs that reached verification;
//   - portcullis_signals_applied_total: SETs applied and recorded;
//   - portcullis_signals_duplicates_total: SETs refused as replays;
//   - portcullis_signals_refused_total{reason}: other refusals, by reason.
type signalCollector struct{ r *receiver.Receiver }

var (
	signalsReceivedDesc = prometheus.NewDesc("portcullis_signals_received_total",
		"Security Event Tokens this replica's Shared Signals receiver verified or refused.", nil, nil)
	signalsAppliedDesc = prometheus.NewDesc("portcullis_signals_applied_total",
		"Security Event Tokens this replica applied and recorded.", nil, nil)
	signalsDuplicatesDesc = prometheus.NewDesc("portcullis_signals_duplicates_total",
		"Security Event Tokens refused as replays of a jti received before.", nil, nil)
	signalsRefusedDesc = prometheus.NewDesc("portcullis_signals_refused_total",
		"Security Event Tokens (and pushes) refused, by reason.", []string{"reason"}, nil)
)

func (c signalCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- signalsReceivedDesc
	ch <- signalsAppliedDesc
	ch <- signalsDuplicatesDesc
	ch <- signalsRefusedDesc
}

func (c signalCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.r.Stats()
	ch <- prometheus.MustNewConstMetric(signalsReceivedDesc, prometheus.CounterValue, float64(st.Received))
	ch <- prometheus.MustNewConstMetric(signalsAppliedDesc, prometheus.CounterValue, float64(st.Applied))
	ch <- prometheus.MustNewConstMetric(signalsDuplicatesDesc, prometheus.CounterValue, float64(st.Duplicates))
	for reason, n := range st.Refused {
		ch <- prometheus.MustNewConstMetric(signalsRefusedDesc, prometheus.CounterValue, float64(n), reason)
	}
}
