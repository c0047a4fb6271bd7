package etcd

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// schemaVersion is the layout of the keys under the prefix (keys.go). Open
// refuses a store of any other version, older or newer: before 1.0 there is
// no migration (see the README's Compatibility section). Version-1 stores,
// written by development builds without the refresh-token index by
// session, and version-2 stores, without the audit indexes, are refused
// too.
const schemaVersion = 3

// Store is a storage.Store over an etcd cluster, under one key prefix.
type Store struct {
	cli       *clientv3.Client
	ownClient bool
	k         keyspace
	prefix    string
	opts      Options
	log       *slog.Logger
	storeID   string

	// ctx is cancelled by Close: it ends watchers and calls in flight.
	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
	closeErr  error

	hub      *hub
	stats    stats
	presence presence
}

// stats count the work of Update; tests and benchmarks read them.
type stats struct {
	commits   atomic.Int64 // etcd transactions that succeeded
	conflicts atomic.Int64 // etcd transactions that failed their comparisons
}

var _ storage.Store = (*Store)(nil)

// metaRecord is the value of <prefix>/meta/store.
type metaRecord struct {
	Schema int    `json:"schema"`
	Nonce  string `json:"nonce"`
}

// Open connects to the etcd cluster at opts.Endpoints and opens (creating
// on first use) the store under opts.Prefix. The store owns the client and
// closes it with Close. ctx bounds only the opening.
func Open(ctx context.Context, opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("storage/etcd: no endpoints")
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            opts.Endpoints,
		TLS:                  opts.TLS,
		Username:             opts.Username,
		Password:             opts.Password,
		DialTimeout:          opts.DialTimeout,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		Logger:               zap.New(newSlogCore(opts.Logger, zapcore.WarnLevel)),
	})
	if err != nil {
		return nil, fmt.Errorf("storage/etcd: client for %v: %w", opts.Endpoints, err)
	}
	s, err := newStore(ctx, cli, opts, true)
	if err != nil {
		_ = cli.Close()
		return nil, err
	}
	return s, nil
}

// New opens (creating on first use) the store under opts.Prefix over an
// existing client; opts.Endpoints, TLS, Username, Password and DialTimeout
// are ignored. Close does not close the client.
func New(ctx context.Context, cli *clientv3.Client, opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return newStore(ctx, cli, opts, false)
}

func newStore(ctx context.Context, cli *clientv3.Client, opts Options, own bool) (*Store, error) {
	s := &Store{
		cli:       cli,
		ownClient: own,
		k:         newKeyspace(opts.Prefix),
		prefix:    opts.Prefix,
		opts:      opts,
	}
	id, err := s.initMeta(ctx)
	if err != nil {
		return nil, err
	}
	s.storeID = id
	s.log = opts.Logger.With("store", id, "prefix", opts.Prefix)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.hub = newHub(s)
	return s, nil
}

// initMeta creates <prefix>/meta/store unless it exists, checks the schema
// and derives the store ID from the cluster ID, the prefix and the nonce
// created with the store: stable for every replica and across restarts, and
// new when the prefix is wiped or the data moves to another cluster. The
// request is bounded by ctx and Options.DialTimeout.
func (s *Store) initMeta(ctx context.Context) (string, error) {
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return "", fmt.Errorf("storage/etcd: store nonce: %w", err)
	}
	fresh, err := json.Marshal(metaRecord{Schema: schemaVersion, Nonce: hex.EncodeToString(nonce[:])})
	if err != nil {
		return "", err
	}
	rctx, cancel := context.WithTimeout(ctx, s.opts.DialTimeout)
	resp, err := s.cli.Txn(rctx).
		If(clientv3.Compare(clientv3.CreateRevision(s.k.metaStore), "=", 0)).
		Then(clientv3.OpPut(s.k.metaStore, string(fresh))).
		Else(clientv3.OpGet(s.k.metaStore)).
		Commit()
	cancel()
	if err != nil {
		return "", fmt.Errorf("storage/etcd: open %s on %v: %w", s.prefix, s.cli.Endpoints(), err)
	}
	var m metaRecord
	if resp.Succeeded {
		m = metaRecord{Schema: schemaVersion, Nonce: hex.EncodeToString(nonce[:])}
	} else {
		if m, err = s.decodeMeta(resp.Responses[0].GetResponseRange().GetKvs()); err != nil {
			return "", err
		}
	}
	// A store of another layout is refused: this build would corrupt it.
	if m.Schema != schemaVersion {
		return "", fmt.Errorf("storage/etcd: unsupported schema version %d under %s (this build reads version %d)", m.Schema, s.prefix, schemaVersion)
	}
	h := sha256.New()
	h.Write(binary.BigEndian.AppendUint64(nil, resp.Header.ClusterId))
	h.Write([]byte(s.prefix))
	h.Write([]byte{0})
	h.Write([]byte(m.Nonce))
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}

// decodeMeta decodes the meta record from the result of a read of it.
func (s *Store) decodeMeta(kvs []*mvccpb.KeyValue) (metaRecord, error) {
	if len(kvs) != 1 {
		return metaRecord{}, fmt.Errorf("%w: %s vanished while opening", errCorrupt, s.k.metaStore)
	}
	var m metaRecord
	if err := json.Unmarshal(kvs[0].Value, &m); err != nil || m.Nonce == "" {
		return metaRecord{}, fmt.Errorf("%w: %s is not a Portcullis store's meta record (%q)", errCorrupt, s.k.metaStore, kvs[0].Value)
	}
	return m, nil
}

// StoreID identifies the store's history: derived from the etcd cluster
// ID, the prefix and a nonce created with the store.
func (s *Store) StoreID() string { return s.storeID }

// Prefix returns the key prefix of the store.
func (s *Store) Prefix() string { return s.prefix }

// Client returns the etcd client of the store.
func (s *Store) Client() *clientv3.Client { return s.cli }

// Commits returns how many etcd transactions Update committed.
func (s *Store) Commits() int64 { return s.stats.commits.Load() }

// Conflicts returns how many Update attempts lost to a concurrent writer
// and ran again.
func (s *Store) Conflicts() int64 { return s.stats.conflicts.Load() }

func (s *Store) closed() bool { return s.ctx.Err() != nil }

// opCtx returns ctx, also cancelled when the store closes.
func (s *Store) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// mapErr turns a client error into the store's: storage.ErrClosed once the
// store is closed, the caller's context error as is, others wrapped.
func (s *Store) mapErr(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case s.closed():
		return storage.ErrClosed
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, rpctypes.ErrNoSpace):
		return fmt.Errorf("storage/etcd: %s: etcd is over its storage quota (--quota-backend-bytes); compact and defragment etcd, disarm the NOSPACE alarm, or raise the quota: %w", what, err)
	}
	return fmt.Errorf("storage/etcd: %s: %w", what, err)
}

// View runs fn on a snapshot: every read is made at the etcd revision of
// fn's first read.
func (s *Store) View(ctx context.Context, fn func(storage.ReadTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed() {
		return storage.ErrClosed
	}
	ctx, done := s.opCtx(ctx)
	defer done()
	t := newTxn(s, ctx, false)
	err := fn(t)
	t.done = true
	if err == nil {
		err = t.sticky
	}
	return err
}

// Close ends every watcher with storage.ErrClosed, makes calls in flight
// fail with it, deletes the store's presence values (revoking their lease)
// and, when Open created the client, closes the client.
// Closing twice is harmless.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.revokePresence()
		if s.ownClient {
			if err := s.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
				s.closeErr = fmt.Errorf("storage/etcd: close: %w", err)
			}
		}
	})
	return s.closeErr
}
