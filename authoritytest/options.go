package authoritytest

import (
	"time"

	"google.golang.org/grpc"
)

// Options tune the authority. Zero fields take the defaults of
// `portcullis serve`, except where noted.
type Options struct {
	// Clock is the authority's clock (default: NewClock(DefaultStart)).
	// Several authorities may share one.
	Clock *Clock
	// CheckpointInterval is how often an idle Watch stream gets a
	// checkpoint (default 5s).
	CheckpointInterval time.Duration
	// SendTimeout ends a Watch stream whose subscriber has not taken a
	// message for this long (default 30s).
	SendTimeout time.Duration
	// ProgressTimeout ends the Watch stream of a mirror that has sent no
	// progress report for this long, dropping it from ListSubscribers and
	// from the set a write with a wait waits for (default 3 checkpoint
	// intervals, at least 1s).
	ProgressTimeout time.Duration
	// SnapshotPartSize bounds the encoded size of one message of a Watch
	// snapshot, in bytes (default 1 MiB): a larger snapshot comes in
	// several parts. Lower it to split a test's small snapshot.
	SnapshotPartSize int
	// ServerOptions are added to the authority's grpc.Server after its
	// own (interceptors that count or refuse calls, say).
	ServerOptions []grpc.ServerOption
	// Loopback also serves the authority on a TCP port of 127.0.0.1, whose
	// address Addr returns: for code under test that dials an address
	// itself, such as a command run in-process. Dial always uses the
	// in-memory listener.
	Loopback bool
	// EtcdEndpoints, when set, keep the authority's data in this etcd
	// cluster (client URLs, plaintext) instead of a bbolt file: as
	// `portcullis serve --store etcd://...` does, and as replicas must (StartReplicas).
	// The embedetcd package starts one in-process.
	EtcdEndpoints []string
	// EtcdMaxTxnOps is the cluster's --max-txn-ops, when it is not etcd's
	// default of 128 (etcd.Options.MaxTxnOps).
	EtcdMaxTxnOps int
	// EtcdPrefix is the key prefix of the store in etcd (default: a fresh,
	// random one, so that authorities sharing a cluster share nothing).
	EtcdPrefix string
	// PublicURL is the authority's base URL for Shared Signals (serve
	// --public-url): a push transmitter is told to deliver to
	// PublicURL/ssf/receive/<id>, so serve HTTPHandler there.
	PublicURL string
}
