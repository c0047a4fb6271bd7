package etcd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

var _ storage.Presence = (*Store)(nil)

// presence is this store's side of storage.Presence: its values live under
// the lease of one etcd session (concurrency.Session), kept alive while the
// store is open. When the process stops (or loses etcd for longer than the
// TTL) the lease expires and etcd deletes the values: no reader waits on a
// dead replica.
type presence struct {
	mu     sync.Mutex
	lease  clientv3.LeaseID  // 0: none granted yet, or lost
	values map[string][]byte // what was published, put again under a new lease
}

// presenceRetry spaces the attempts to get a lost lease back, and the
// re-reads of a presence watch that etcd ended.
const presenceRetry = time.Second

// PublishPresence puts value at <prefix>/presence/<id> under the store's
// lease.
func (s *Store) PublishPresence(ctx context.Context, id string, value []byte) error {
	if err := storage.CheckKeyPart("presence id", id); err != nil {
		return err
	}
	if len(value) > storage.MaxPresenceValue {
		return fmt.Errorf("%w: presence value of %d bytes (at most %d)", storage.ErrInvalidRecord, len(value), storage.MaxPresenceValue)
	}
	if s.closed() {
		return storage.ErrClosed
	}
	ctx, done := s.opCtx(ctx)
	defer done()
	p := &s.presence
	p.mu.Lock()
	defer p.mu.Unlock()
	value = bytes.Clone(value)
	// Two attempts: the first may find that the lease expired meanwhile.
	var err error
	for range 2 {
		var lease clientv3.LeaseID
		if lease, err = s.presenceLeaseLocked(ctx); err != nil {
			break
		}
		if _, err = s.cli.Put(ctx, s.k.presence(id), string(value), clientv3.WithLease(lease)); err == nil {
			if p.values == nil {
				p.values = map[string][]byte{}
			}
			p.values[id] = value
			return nil
		}
		if !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			break
		}
		p.lease = 0
	}
	return s.mapErr("publish presence", err)
}

// presenceLeaseLocked returns the store's lease, starting a session when
// there is none. p.mu is held.
func (s *Store) presenceLeaseLocked(ctx context.Context) (clientv3.LeaseID, error) {
	p := &s.presence
	if p.lease != 0 {
		return p.lease, nil
	}
	// The lease is granted here, bounded by ctx (a session would grant it
	// under its own context); the session keeps it alive until the store
	// closes (s.ctx), not until this call ends.
	ttl := int64((s.opts.PresenceTTL + time.Second - 1) / time.Second)
	g, err := s.cli.Grant(ctx, ttl)
	if err != nil {
		return 0, err
	}
	sess, err := concurrency.NewSession(s.cli, concurrency.WithLease(g.ID), concurrency.WithContext(s.ctx))
	if err != nil {
		return 0, err
	}
	p.lease = g.ID
	go s.keepPresence(sess)
	return g.ID, nil
}

// keepPresence waits for the end of the session. When it ends while the
// store is open, the lease is gone (expired while etcd was out of reach):
// the values are put again under a new one, so that this replica reappears
// for the others without waiting for its next publish.
func (s *Store) keepPresence(sess *concurrency.Session) {
	<-sess.Done()
	lease := sess.Lease()
	for !s.closed() {
		err := s.republishPresence(lease)
		if err == nil {
			return
		}
		s.log.Warn("presence lease lost; retrying", "err", err)
		select {
		case <-s.ctx.Done():
		case <-time.After(presenceRetry):
		}
	}
}

func (s *Store) republishPresence(lost clientv3.LeaseID) error {
	p := &s.presence
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lease != lost && p.lease != 0 {
		return nil // a publish got a new lease already
	}
	p.lease = 0
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.DialTimeout)
	defer cancel()
	lease, err := s.presenceLeaseLocked(ctx)
	if err != nil {
		return err
	}
	for id, v := range p.values {
		if _, err := s.cli.Put(ctx, s.k.presence(id), string(v), clientv3.WithLease(lease)); err != nil {
			return err
		}
	}
	return nil
}

// revokePresence deletes the store's values at Close, rather than leaving
// them to the TTL: the other replicas stop counting this one at once.
func (s *Store) revokePresence() {
	p := &s.presence
	p.mu.Lock()
	lease := p.lease
	p.lease = 0
	p.mu.Unlock()
	if lease == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.DialTimeout)
	defer cancel()
	if _, err := s.cli.Revoke(ctx, lease); err != nil {
		s.log.Warn("presence lease not revoked; it expires after its TTL", "err", err)
	}
}

// WatchPresence follows <prefix>/presence/: one read, then an etcd watch
// from the read's revision, read again when etcd ends the watch.
func (s *Store) WatchPresence(ctx context.Context) (<-chan map[string][]byte, error) {
	if s.closed() {
		return nil, storage.ErrClosed
	}
	ctx, done := s.opCtx(ctx)
	root := s.k.bucket(bucketPresence)
	m, rev, err := s.readPresence(ctx, root)
	if err != nil {
		done()
		return nil, s.mapErr("watch presence", err)
	}
	out := make(chan map[string][]byte, 1)
	out <- maps.Clone(m)
	go func() {
		defer done()
		defer close(out)
		for {
			wch := s.cli.Watch(clientv3.WithRequireLeader(ctx), root, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
			for resp := range wch {
				if resp.Err() != nil {
					break
				}
				for _, ev := range resp.Events {
					id := strings.TrimPrefix(string(ev.Kv.Key), root)
					if ev.Type == mvccpb.DELETE {
						delete(m, id)
					} else {
						m[id] = ev.Kv.Value
					}
				}
				rev = resp.Header.Revision
				if len(resp.Events) > 0 {
					sendLatest(out, maps.Clone(m))
				}
			}
			// etcd ended the watch (compaction, lost leader) or ctx ended.
			for {
				select {
				case <-ctx.Done():
					return
				default:
				}
				if m, rev, err = s.readPresence(ctx, root); err == nil {
					break
				}
				s.log.Warn("presence watch: read failed; retrying", "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(presenceRetry):
				}
			}
			sendLatest(out, maps.Clone(m))
		}
	}()
	return out, nil
}

func (s *Store) readPresence(ctx context.Context, root string) (map[string][]byte, int64, error) {
	resp, err := s.cli.Get(ctx, root, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, err
	}
	m := make(map[string][]byte, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		m[strings.TrimPrefix(string(kv.Key), root)] = kv.Value
	}
	return m, resp.Header.Revision, nil
}

// sendLatest puts m on out, replacing a map the reader has not taken: the
// reader wants the latest state, not every step. There is one sender.
func sendLatest(out chan map[string][]byte, m map[string][]byte) {
	for {
		select {
		case out <- m:
			return
		default:
		}
		select {
		case <-out:
		default:
		}
	}
}
