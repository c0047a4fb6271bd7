// Package mirrormetrics exports a client.Mirror to Prometheus: a collector
// that a service registers on its own registry, next to its other metrics.
//
// Everything is read from the mirror when the registry is scraped (Stats,
// Checks, Staleness, AuthorityRevision), so the collector adds nothing
// to the cost of a check beyond the mirror's own per-result counters.
//
//	reg.MustRegister(mirrormetrics.NewCollector(mirror))
//
// A service with several mirrors wraps each collector's registerer with a
// constant label (prometheus.WrapRegistererWith) to tell them apart.
//
// It may import client and the Prometheus client library; nothing from
// internal/ or server/.
package mirrormetrics
