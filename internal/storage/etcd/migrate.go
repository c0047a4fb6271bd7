package etcd

import (
	"context"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// Schema 1 -> 2 adds the refresh-token index by session
// (bucketRefreshBySession) for the tokens written before it existed, so
// that sweeping finds them. Unlike bolt's (one bbolt transaction over the
// whole file), the etcd migration cannot be one transaction: etcd bounds a
// transaction by --max-txn-ops, so the tokens are indexed in batches, and
// the meta record says schema 2 only once every batch is done. Other
// replicas keep serving meanwhile:
//
//   - Index puts are idempotent (the same key, an empty value, written only
//     when absent), so replicas of this build opening a schema-1 store at
//     once may all migrate it; the work is repeated, never wrong. The last
//     step, the meta record, compares its ModRevision: one replica writes
//     schema 2, the others find it done and go on.
//   - Each batch is committed only if none of its tokens changed since it
//     was read (their ModRevisions), so a token deleted or rewritten by a
//     running replica meanwhile never gets an entry its record does not
//     back (an index naming an absent token is a corrupt store); the batch
//     is read again instead.
//   - Replicas of the build that introduced the index (schema 1 too) keep
//     it in step with their own writes, so the tokens they write during the
//     migration are indexed by them. A build from before the index writes
//     tokens without entries: it must not be running once the migration
//     has passed, which is why all replicas are upgraded together.
//   - A schema-1 build opening the store after the migration refuses it
//     (unsupported schema version), like any build older than its store.
//
// A token whose session was already swept by a schema-1 build is indexed
// too, but no sweep visits a session that no longer exists, so it stays.

// migrateBatchRead, when set (tests only), runs after a batch of the
// migration was read and before it is committed: the tests change the
// store there to exercise the comparisons.
var migrateBatchRead func()

// migrate1to2 brings the store from schema 1 (m, whose record has
// ModRevision metaRev) to schema 2 and returns the meta record it ends
// with: schema 2, or what another replica wrote meanwhile (which the
// caller checks like any other). ctx bounds the whole migration; each
// request is also bounded by Options.DialTimeout.
func (s *Store) migrate1to2(ctx context.Context, m metaRecord, metaRev int64) (metaRecord, error) {
	log := s.opts.Logger.With("prefix", s.prefix)
	for attempt := 1; ; attempt++ {
		log.Info("storage/etcd: migrating the store from schema 1 to 2 (indexing refresh tokens by session)")
		seen, added, err := s.indexRefreshTokens(ctx)
		if err != nil {
			return m, fmt.Errorf("storage/etcd: migrate %s to schema 2: %w", s.prefix, err)
		}
		next, err := encode("meta record", metaRecord{Schema: 2, Nonce: m.Nonce})
		if err != nil {
			return m, err
		}
		rctx, cancel := context.WithTimeout(ctx, s.opts.DialTimeout)
		resp, err := s.cli.Txn(rctx).
			If(clientv3.Compare(clientv3.ModRevision(s.k.metaStore), "=", metaRev)).
			Then(clientv3.OpPut(s.k.metaStore, string(next))).
			Else(clientv3.OpGet(s.k.metaStore)).
			Commit()
		cancel()
		if err != nil {
			return m, fmt.Errorf("storage/etcd: migrate %s to schema 2: %w", s.prefix, err)
		}
		if resp.Succeeded {
			log.Info("storage/etcd: migrated the store to schema 2", "refresh_tokens", seen, "indexed", added)
			return metaRecord{Schema: 2, Nonce: m.Nonce}, nil
		}
		// Someone wrote the meta record since it was read: most likely
		// another replica that finished the same migration.
		cur, rev, err := s.decodeMeta(resp.Responses[0].GetResponseRange().GetKvs())
		if err != nil {
			return m, err
		}
		if cur.Schema != 1 {
			return cur, nil
		}
		if attempt == s.opts.MaxAttempts {
			return m, fmt.Errorf("storage/etcd: migrate %s to schema 2: its meta record kept changing (%d attempts)", s.prefix, attempt)
		}
		m, metaRev = cur, rev
	}
}

// indexRefreshTokens adds the missing index entry of every refresh token,
// in key order, MaxTxnOps/2 tokens per etcd transaction. It returns how
// many tokens it read and how many entries it added.
func (s *Store) indexRefreshTokens(ctx context.Context) (seen, added int, err error) {
	// A batch's transaction has one comparison and one nested transaction
	// (one comparison, one put) per token; etcd counts a nested
	// transaction's operations against what the outer one leaves of
	// --max-txn-ops, so half of MaxTxnOps stays under it.
	limit := max(s.opts.MaxTxnOps/2, 1)
	start, end := s.k.bucket(bucketRefreshTokens), prefixEnd(s.k.bucket(bucketRefreshTokens))
	for {
		last, n, a, more, err := s.indexRefreshBatch(ctx, start, end, limit)
		seen, added = seen+n, added+a
		if err != nil || !more {
			return seen, added, err
		}
		start = last + "\x00"
	}
}

// indexRefreshBatch indexes up to limit refresh tokens from start, reading
// them again when one changed before the commit. It returns the last key
// of the batch, how many tokens it had and how many entries it added, and
// whether more tokens follow.
func (s *Store) indexRefreshBatch(ctx context.Context, start, end string, limit int) (last string, n, added int, more bool, err error) {
	for attempt := 1; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, s.opts.DialTimeout)
		got, err := s.cli.Get(rctx, start, clientv3.WithRange(end), clientv3.WithLimit(int64(limit)))
		cancel()
		if err != nil {
			return "", 0, 0, false, err
		}
		if len(got.Kvs) == 0 {
			return "", 0, 0, false, nil
		}
		cmps := make([]clientv3.Cmp, 0, len(got.Kvs))
		ops := make([]clientv3.Op, 0, len(got.Kvs))
		for _, kv := range got.Kvs {
			key := string(kv.Key)
			r, err := decode[storage.RefreshToken]("refresh token", key, kv.Value)
			if err != nil {
				return "", 0, 0, false, err
			}
			// The entry must name this record, or scans of the index would
			// look for another key; PutRefreshToken never wrote one that
			// fails these checks.
			if s.k.refresh(r.Hash) != key || storage.CheckKeyPart("session ID", r.SessionID) != nil {
				return "", 0, 0, false, fmt.Errorf("%w: refresh token at %q (session %q) cannot be indexed", errCorrupt, key, r.SessionID)
			}
			idx := s.k.refreshBySession(r.Hash, r.SessionID)
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision))
			// Written only when absent: entries the running build already
			// keeps are not rewritten, which would make concurrent Updates
			// that iterated over the index fail their comparisons.
			ops = append(ops, clientv3.OpTxn(
				[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(idx), "=", 0)},
				[]clientv3.Op{clientv3.OpPut(idx, "")}, nil))
		}
		if migrateBatchRead != nil {
			migrateBatchRead()
		}
		rctx, cancel = context.WithTimeout(ctx, s.opts.DialTimeout)
		resp, err := s.cli.Txn(rctx).If(cmps...).Then(ops...).Commit()
		cancel()
		if err != nil {
			return "", 0, 0, false, err
		}
		if resp.Succeeded {
			for _, r := range resp.Responses {
				if r.GetResponseTxn().GetSucceeded() {
					added++
				}
			}
			return string(got.Kvs[len(got.Kvs)-1].Key), len(got.Kvs), added, got.More, nil
		}
		if attempt == s.opts.MaxAttempts {
			return "", 0, 0, false, errors.New("the refresh tokens kept changing while being indexed")
		}
	}
}
