package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// issuerCollector exports how the fetches of external issuers' keys go,
// so that an IdP that cannot be reached shows on a dashboard before its
// keys rotate away from the last good ones:
//
//   - portcullis_issuer_fetches_total{issuer,result}: this replica's
//     fetches of the issuer's discovery document and JWKS, by result
//     (success, failure);
//   - portcullis_issuer_fetch_failing{issuer}: 1 while the last fetch (of
//     any replica) failed, else 0;
//   - portcullis_issuer_last_success_timestamp_seconds{issuer}: the last
//     successful fetch (of any replica).
type issuerCollector struct{ s *Server }

var (
	issuerFetchesDesc = prometheus.NewDesc("portcullis_issuer_fetches_total",
		"Fetches of an external issuer's discovery document and JWKS by this replica, by result.", []string{"issuer", "result"}, nil)
	issuerFailingDesc = prometheus.NewDesc("portcullis_issuer_fetch_failing",
		"1 while the last fetch of the external issuer's keys failed (the last good keys stay in use), else 0.", []string{"issuer"}, nil)
	issuerSuccessDesc = prometheus.NewDesc("portcullis_issuer_last_success_timestamp_seconds",
		"When the external issuer's keys were last fetched successfully.", []string{"issuer"}, nil)
)

func (c issuerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- issuerFetchesDesc
	ch <- issuerFailingDesc
	ch <- issuerSuccessDesc
}

func (c issuerCollector) Collect(ch chan<- prometheus.Metric) {
	for url, n := range c.s.auth.IssuerFetchStats() {
		ch <- prometheus.MustNewConstMetric(issuerFetchesDesc, prometheus.CounterValue, float64(n.Successes), url, "success")
		ch <- prometheus.MustNewConstMetric(issuerFetchesDesc, prometheus.CounterValue, float64(n.Failures), url, "failure")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := c.s.auth.ListIssuers(ctx)
	if err != nil {
		return
	}
	for _, is := range list {
		failing := 0.0
		if is.LastError != "" {
			failing = 1
		}
		ch <- prometheus.MustNewConstMetric(issuerFailingDesc, prometheus.GaugeValue, failing, is.URL)
		if !is.LastSuccessTime.IsZero() {
			ch <- prometheus.MustNewConstMetric(issuerSuccessDesc, prometheus.GaugeValue, float64(is.LastSuccessTime.UnixNano())/1e9, is.URL)
		}
	}
}
