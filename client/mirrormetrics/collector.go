package mirrormetrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis-dev/portcullis/client"
)

var (
	revisionDesc = prometheus.NewDesc("portcullis_mirror_revision",
		"The store revision whose state the mirror checks against.", nil, nil)
	authorityRevisionDesc = prometheus.NewDesc("portcullis_mirror_authority_revision",
		"The authority's current revision as the mirror last learnt it (checkpoint or progress answer).", nil, nil)
	lagDesc = prometheus.NewDesc("portcullis_mirror_lag_revisions",
		"Revisions the mirror knows it has not applied yet (authority revision minus mirror revision).", nil, nil)
	stalenessDesc = prometheus.NewDesc("portcullis_mirror_staleness_seconds",
		"Time since the mirror last heard from the authority; past the stale bound, checks fail closed (MIRROR_STALE) unless fail-open.", nil, nil)
	syncedDesc = prometheus.NewDesc("portcullis_mirror_synced",
		"1 once the mirror has loaded its first snapshot, else 0.", nil, nil)
	heldDesc = prometheus.NewDesc("portcullis_mirror_entries",
		"What the mirror holds, by kind: bans, revoked_sessions, keys, cached_tokens, tracked_streams.", []string{"kind"}, nil)
	resetsDesc = prometheus.NewDesc("portcullis_mirror_snapshots_total",
		"Snapshots applied, the first included; more than one means the mirror had to start over.", nil, nil)
	connectsDesc = prometheus.NewDesc("portcullis_mirror_connects_total",
		"Watch streams opened.", nil, nil)
	changesDesc = prometheus.NewDesc("portcullis_mirror_changes_total",
		"Changes (revisions) applied.", nil, nil)
	eventsDesc = prometheus.NewDesc("portcullis_mirror_events_total",
		"Events applied.", nil, nil)
	reportsDesc = prometheus.NewDesc("portcullis_mirror_progress_reports_total",
		"Progress reports sent to the authority.", nil, nil)
	checksDesc = prometheus.NewDesc("portcullis_mirror_checks_total",
		"Checks answered by the mirror, by result (allowed, stale, token_invalid, token_expired, banned, session_revoked, capability_restricted).",
		[]string{"result"}, nil)
)

// Collector is a prometheus.Collector for one mirror.
type Collector struct {
	m *client.Mirror
}

// NewCollector returns the collector of m.
func NewCollector(m *client.Mirror) *Collector { return &Collector{m: m} }

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{revisionDesc, authorityRevisionDesc, lagDesc, stalenessDesc, syncedDesc,
		heldDesc, resetsDesc, connectsDesc, changesDesc, eventsDesc, reportsDesc, checksDesc} {
		ch <- d
	}
}

// Collect reads the mirror now.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.m.Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	authority := st.AuthorityRevision
	gauge(revisionDesc, float64(st.Revision))
	gauge(authorityRevisionDesc, float64(authority))
	gauge(lagDesc, float64(max(authority-st.Revision, 0)))
	gauge(stalenessDesc, st.Staleness.Seconds())
	synced := 0.0
	if st.StoreID != "" {
		synced = 1
	}
	gauge(syncedDesc, synced)
	gauge(heldDesc, float64(st.Bans), "bans")
	gauge(heldDesc, float64(st.Revoked), "revoked_sessions")
	gauge(heldDesc, float64(st.Keys), "keys")
	gauge(heldDesc, float64(st.Cached), "cached_tokens")
	gauge(heldDesc, float64(st.Tracked), "tracked_streams")
	counter(resetsDesc, float64(st.Resets))
	counter(connectsDesc, float64(st.Connects))
	counter(changesDesc, float64(st.Changes))
	counter(eventsDesc, float64(st.Events))
	counter(reportsDesc, float64(st.Reports))
	for result, n := range st.Checks {
		counter(checksDesc, float64(n), result)
	}
}
