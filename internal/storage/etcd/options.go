package etcd

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"
)

// DefaultPrefix is the key prefix of a store when Options.Prefix is empty.
const DefaultPrefix = "/portcullis"

// Options configure a Store. The zero value (plus Endpoints, for Open) is
// usable: every zero field takes its default.
type Options struct {
	// Endpoints are the etcd client URLs ("127.0.0.1:2379",
	// "https://etcd-0:2379"). Open needs at least one; New ignores them.
	Endpoints []string

	// Prefix is the key prefix every key of the store lives under (default
	// "/portcullis"; trailing slashes are dropped). Several stores can share
	// one etcd cluster under different prefixes.
	Prefix string

	// TLS, when set, is used for the connection to etcd (client
	// certificates included).
	TLS *tls.Config

	// Username and Password authenticate to etcd when its auth is enabled.
	Username, Password string

	// DialTimeout bounds Open's first contact with the cluster (default 5s).
	DialTimeout time.Duration

	// MaxTxnOps is the most comparisons the store puts into one etcd
	// transaction; it merges the read set of a large Update into coarser
	// ranges to stay within it. It must not exceed etcd's --max-txn-ops
	// (default 128, which is the default here too). The number of keys an
	// Update writes is bounded by etcd's --max-txn-ops as well; an Update
	// that writes more fails with storage.ErrTxnTooLarge.
	MaxTxnOps int

	// MaxAttempts bounds how often Update runs its function when other
	// writers keep changing what it read (default 64).
	MaxAttempts int

	// PresenceTTL is how long the values this store publishes
	// (storage.Presence) outlive the process that stops renewing them:
	// how long the other replicas may go on counting a replica that
	// crashed (default 10s; rounded up to whole seconds, and etcd raises
	// it to its minimum, about 2s with default timing).
	PresenceTTL time.Duration

	// Logger receives the store's and the etcd client's warnings.
	// Default: discard.
	Logger *slog.Logger
}

const (
	defaultDialTimeout = 5 * time.Second
	defaultMaxTxnOps   = 128
	defaultMaxAttempts = 64
	defaultPresenceTTL = 10 * time.Second
	// minTxnOps leaves room for one range and one guard comparison per
	// bucket, which merging never goes below.
	minTxnOps = 32
)

func (o Options) withDefaults() (Options, error) {
	var err error
	if o.Prefix, err = normalizePrefix(o.Prefix); err != nil {
		return o, err
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = defaultDialTimeout
	}
	switch {
	case o.MaxTxnOps == 0:
		o.MaxTxnOps = defaultMaxTxnOps
	case o.MaxTxnOps < minTxnOps:
		return o, fmt.Errorf("storage/etcd: MaxTxnOps %d is below %d", o.MaxTxnOps, minTxnOps)
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = defaultMaxAttempts
	}
	if o.PresenceTTL <= 0 {
		o.PresenceTTL = defaultPresenceTTL
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}
