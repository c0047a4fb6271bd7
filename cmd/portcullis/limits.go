package main

import (
	"github.com/spf13/pflag"

	"github.com/portcullis-dev/portcullis/server"
)

// addLimitFlags registers the abuse limits of `serve` (server.Limits). The
// defaults are server.DefaultLimits; a negative value turns a limit off.
func addLimitFlags(f *pflag.FlagSet, l *server.Limits) {
	d := server.DefaultLimits
	f.IntVar(&l.MaxRecvMsgSize, "max-recv-msg-size", d.MaxRecvMsgSize, "largest gRPC request message, in bytes")
	f.IntVar(&l.MaxConcurrentStreams, "max-concurrent-streams", d.MaxConcurrentStreams, "most calls in flight on one connection")
	f.DurationVar(&l.KeepaliveMinTime, "keepalive-min-time", d.KeepaliveMinTime, "shortest interval between client keepalive pings tolerated (faster: GOAWAY)")
	f.BoolVar(&l.KeepaliveNoStreamPings, "keepalive-permit-without-stream", d.KeepaliveNoStreamPings, "tolerate keepalive pings on connections with no call in flight")
	f.Float64Var(&l.RefreshPerSecond, "refresh-rate", d.RefreshPerSecond, "RefreshSession calls per second per peer IP address")
	f.IntVar(&l.RefreshBurst, "refresh-burst", d.RefreshBurst, "RefreshSession burst per peer IP address")
	f.Float64Var(&l.CreateSessionPerSecond, "create-session-rate", d.CreateSessionPerSecond, "CreateSession calls per second per API key")
	f.IntVar(&l.CreateSessionBurst, "create-session-burst", d.CreateSessionBurst, "CreateSession burst per API key")
	f.Float64Var(&l.FailedAuthPerSecond, "failed-auth-rate", d.FailedAuthPerSecond, "failed authentications per second per peer IP address before ResourceExhausted")
	f.IntVar(&l.FailedAuthBurst, "failed-auth-burst", d.FailedAuthBurst, "failed authentication burst per peer IP address")
	f.IntVar(&l.MaxWatchersPerKey, "max-watchers-per-key", d.MaxWatchersPerKey, "most open Watch streams per API key")
	f.Float64Var(&l.DeniedAuditPerSecond, "denied-audit-rate", d.DeniedAuditPerSecond, "denied calls per second, across all addresses, audited one by one; the rest are counted in call.denied.summary records")
	f.IntVar(&l.DeniedAuditBurst, "denied-audit-burst", d.DeniedAuditBurst, "burst of denied calls audited one by one, across all addresses")
	f.DurationVar(&l.DeniedSummaryInterval, "denied-summary-interval", d.DeniedSummaryInterval, "at most one call.denied.summary record per interval")
}
