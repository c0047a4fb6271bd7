package etcd_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd/etcdtest"
)

// The layout a schema-1 build wrote, spelled out here rather than taken
// from the package: the test is about what is in etcd, not about the
// current code's idea of it.
func v1TokenKey(prefix string, r storage.RefreshToken) string {
	return prefix + "/refresh/" + hex.EncodeToString(r.Hash)
}

func v1IndexKey(prefix string, r storage.RefreshToken) string {
	return prefix + "/idx/refresh_by_session/" + r.SessionID + "\x00" + hex.EncodeToString(r.Hash)
}

const v1Nonce = "00112233445566778899aabbccddeeff"

// writeSchema1 writes, with a raw client, what a schema-1 build left under
// prefix: the meta record at schema 1 and the tokens' records. The tokens
// for which indexed is true also get their index entry (written by the
// build that introduced the index); the others have none (written before
// it). Writes go 20 keys per transaction, under any --max-txn-ops.
func writeSchema1(t *testing.T, cli *clientv3.Client, prefix string, tokens []storage.RefreshToken, indexed func(i int) bool) {
	t.Helper()
	meta := fmt.Sprintf(`{"schema":1,"nonce":%q}`, v1Nonce)
	ops := []clientv3.Op{clientv3.OpPut(prefix+"/meta/store", meta)}
	flush := func() {
		if _, err := cli.Txn(t.Context()).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
		ops = ops[:0]
	}
	for i, r := range tokens {
		raw, err := json.Marshal(r.UTC())
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, clientv3.OpPut(v1TokenKey(prefix, r), string(raw)))
		if indexed != nil && indexed(i) {
			ops = append(ops, clientv3.OpPut(v1IndexKey(prefix, r), ""))
		}
		if len(ops) >= 20 {
			flush()
		}
	}
	flush()
}

func v1Token(i int, session string, gen uint64) storage.RefreshToken {
	return storage.RefreshToken{
		Hash:       []byte(fmt.Sprintf("hash-%04d", i)),
		SessionID:  session,
		Generation: gen,
		ExpireTime: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

// generations returns the generations of the session's tokens found
// through the index, sorted.
func generations(t *testing.T, s storage.Store, session string) []uint64 {
	t.Helper()
	var gens []uint64
	err := s.View(t.Context(), func(tx storage.ReadTx) error {
		gens = nil
		for r, err := range tx.RefreshTokens(session) {
			if err != nil {
				return err
			}
			gens = append(gens, r.Generation)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("RefreshTokens(%q): %v", session, err)
	}
	slices.Sort(gens)
	return gens
}

// rawMeta reads the meta record as stored.
func rawMeta(t *testing.T, cli *clientv3.Client, prefix string) (schema int, nonce string) {
	t.Helper()
	resp, err := cli.Get(t.Context(), prefix+"/meta/store")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 {
		t.Fatalf("meta record: %d keys", len(resp.Kvs))
	}
	var m struct {
		Schema int    `json:"schema"`
		Nonce  string `json:"nonce"`
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &m); err != nil {
		t.Fatal(err)
	}
	return m.Schema, m.Nonce
}

func countKeys(t *testing.T, cli *clientv3.Client, prefix string) int64 {
	t.Helper()
	resp, err := cli.Get(t.Context(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

func clusterRevision(t *testing.T, cli *clientv3.Client) int64 {
	t.Helper()
	resp, err := cli.Get(t.Context(), "/none")
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

func openErr(prefix string, m *etcdtest.Member, opts etcd.Options) (*etcd.Store, error) {
	opts.Prefix = prefix
	opts.Endpoints = etcdtest.Endpoints(m)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return etcd.Open(ctx, opts)
}

// A schema-1 store (tokens without index entries next to tokens with one)
// is migrated by Open: every token is found by session, the meta record
// says schema 2 with the same nonce, sweeping a session through the index
// leaves nothing, and opening again writes nothing.
func TestOpenMigratesSchema1(t *testing.T) {
	m := etcdtest.Start(t, etcdtest.Config{UnsafeNoFsync: true})
	cli := etcdtest.Client(t, m)
	prefix := etcdtest.NewPrefix()
	tokens := []storage.RefreshToken{
		v1Token(0, "ses_a", 0), v1Token(1, "ses_a", 1), v1Token(2, "ses_a", 2), v1Token(3, "ses_b", 0),
	}
	writeSchema1(t, cli, prefix, tokens, func(i int) bool { return i == 1 })

	s := etcdtest.Open(t, etcd.Options{Prefix: prefix}, m)
	if got := generations(t, s, "ses_a"); !slices.Equal(got, []uint64{0, 1, 2}) {
		t.Errorf("after migration ses_a's tokens have generations %v, want [0 1 2]", got)
	}
	if got := generations(t, s, "ses_b"); !slices.Equal(got, []uint64{0}) {
		t.Errorf("after migration ses_b's tokens have generations %v, want [0]", got)
	}
	if n := countKeys(t, cli, prefix+"/idx/refresh_by_session/"); n != int64(len(tokens)) {
		t.Errorf("%d index entries, want %d", n, len(tokens))
	}
	if schema, nonce := rawMeta(t, cli, prefix); schema != 2 || nonce != v1Nonce {
		t.Errorf("meta record after migration: schema %d, nonce %q; want 2, %q", schema, nonce, v1Nonce)
	}

	// Opening again (a restart, another replica) migrates nothing.
	before := clusterRevision(t, cli)
	s2 := etcdtest.Open(t, etcd.Options{Prefix: prefix}, m)
	if after := clusterRevision(t, cli); after != before {
		t.Errorf("second Open wrote to etcd: revision %d -> %d", before, after)
	}
	if s2.StoreID() != s.StoreID() {
		t.Errorf("store ID changed across opens: %s, then %s", s.StoreID(), s2.StoreID())
	}

	// What the sweeper does: a session's tokens through the index.
	mustUpdate(t, s2, func(tx storage.Tx) error {
		var hashes [][]byte
		for r, err := range tx.RefreshTokens("ses_a") {
			if err != nil {
				return err
			}
			hashes = append(hashes, r.Hash)
		}
		for _, h := range hashes {
			if err := tx.DeleteRefreshToken(h); err != nil {
				return err
			}
		}
		return nil
	})
	if n := countKeys(t, cli, prefix+"/refresh/"); n != 1 {
		t.Errorf("%d token records left after deleting ses_a's, want 1 (ses_b's)", n)
	}
}

// A migration larger than a batch stays under --max-txn-ops (etcd refuses
// a larger transaction) and indexes every token.
func TestOpenMigratesInBatches(t *testing.T) {
	m := etcdtest.Start(t, etcdtest.Config{MaxTxnOps: 32, UnsafeNoFsync: true})
	cli := etcdtest.Client(t, m)
	prefix := etcdtest.NewPrefix()
	const n, sessions = 300, 7
	var tokens []storage.RefreshToken
	want := map[string]int{}
	for i := range n {
		id := fmt.Sprintf("ses_%d", i%sessions)
		tokens = append(tokens, v1Token(i, id, uint64(want[id])))
		want[id]++
	}
	writeSchema1(t, cli, prefix, tokens, nil)

	batches := 0
	defer etcd.SetMigrateBatchRead(func() { batches++ })()
	s := etcdtest.Open(t, etcd.Options{Prefix: prefix, MaxTxnOps: 32}, m)
	if batches < 2 {
		t.Errorf("%d tokens migrated in %d batches at MaxTxnOps 32", n, batches)
	}
	for id, k := range want {
		if got := generations(t, s, id); len(got) != k {
			t.Errorf("%s: %d tokens found by session, want %d", id, len(got), k)
		}
	}
	if got := countKeys(t, cli, prefix+"/idx/refresh_by_session/"); got != n {
		t.Errorf("%d index entries, want %d", got, n)
	}
	if schema, _ := rawMeta(t, cli, prefix); schema != 2 {
		t.Errorf("schema %d after migration, want 2", schema)
	}
}

// A token deleted by a running replica between the migration's read and
// its commit gets no index entry (one would name a missing record, which
// reads report as a corrupt store): the batch is read again.
func TestMigrationRereadsChangedTokens(t *testing.T) {
	m := etcdtest.Start(t, etcdtest.Config{UnsafeNoFsync: true})
	cli := etcdtest.Client(t, m)
	prefix := etcdtest.NewPrefix()
	tokens := []storage.RefreshToken{v1Token(0, "ses_a", 0), v1Token(1, "ses_a", 1), v1Token(2, "ses_b", 0)}
	writeSchema1(t, cli, prefix, tokens, nil)

	reads := 0
	defer etcd.SetMigrateBatchRead(func() {
		if reads++; reads == 1 {
			if _, err := cli.Delete(t.Context(), v1TokenKey(prefix, tokens[1])); err != nil {
				t.Error(err)
			}
		}
	})()
	s := etcdtest.Open(t, etcd.Options{Prefix: prefix}, m)
	if reads != 2 {
		t.Errorf("the batch was read %d times, want 2 (once more after the delete)", reads)
	}
	if got := generations(t, s, "ses_a"); !slices.Equal(got, []uint64{0}) {
		t.Errorf("ses_a's tokens have generations %v, want [0]", got)
	}
	if got := countKeys(t, cli, prefix+"/idx/refresh_by_session/"); got != 2 {
		t.Errorf("%d index entries, want 2", got)
	}
}

// Replicas opening a schema-1 store at once may all migrate it; each Open
// succeeds, they agree on the store ID, and every token is indexed once.
func TestOpenMigratesConcurrently(t *testing.T) {
	m := etcdtest.Start(t, etcdtest.Config{UnsafeNoFsync: true})
	cli := etcdtest.Client(t, m)
	prefix := etcdtest.NewPrefix()
	var tokens []storage.RefreshToken
	for i := range 200 {
		tokens = append(tokens, v1Token(i, fmt.Sprintf("ses_%d", i%5), uint64(i/5)))
	}
	writeSchema1(t, cli, prefix, tokens, func(i int) bool { return i%3 == 0 })

	const replicas = 3
	stores := make([]*etcd.Store, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() { stores[i], errs[i] = openErr(prefix, m, etcd.Options{}) })
	}
	wg.Wait()
	for i, s := range stores {
		if errs[i] != nil {
			t.Fatalf("replica %d: Open: %v", i, errs[i])
		}
		t.Cleanup(func() { s.Close() })
		if s.StoreID() != stores[0].StoreID() {
			t.Errorf("replica %d has store ID %s, replica 0 %s", i, s.StoreID(), stores[0].StoreID())
		}
	}
	for i := range 5 {
		if got := generations(t, stores[i%replicas], fmt.Sprintf("ses_%d", i)); len(got) != 40 {
			t.Errorf("ses_%d: %d tokens found by session, want 40", i, len(got))
		}
	}
	if got := countKeys(t, cli, prefix+"/idx/refresh_by_session/"); got != int64(len(tokens)) {
		t.Errorf("%d index entries, want %d", got, len(tokens))
	}
	if schema, nonce := rawMeta(t, cli, prefix); schema != 2 || nonce != v1Nonce {
		t.Errorf("meta record: schema %d, nonce %q; want 2, %q", schema, nonce, v1Nonce)
	}
}

// A new store is created at schema 2; a store of a newer schema is refused
// and left as it is.
func TestOpenSchemaVersions(t *testing.T) {
	m := etcdtest.Start(t, etcdtest.Config{UnsafeNoFsync: true})
	cli := etcdtest.Client(t, m)

	fresh := etcdtest.NewPrefix()
	etcdtest.Open(t, etcd.Options{Prefix: fresh}, m)
	if schema, _ := rawMeta(t, cli, fresh); schema != 2 {
		t.Errorf("a new store has schema %d, want 2", schema)
	}

	newer := etcdtest.NewPrefix()
	meta := fmt.Sprintf(`{"schema":3,"nonce":%q}`, v1Nonce)
	if _, err := cli.Put(t.Context(), newer+"/meta/store", meta); err != nil {
		t.Fatal(err)
	}
	s, err := openErr(newer, m, etcd.Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open accepted a store of schema 3")
	}
	if !strings.Contains(err.Error(), "unsupported schema version 3") {
		t.Errorf("Open of a schema-3 store: %v", err)
	}
	if schema, _ := rawMeta(t, cli, newer); schema != 3 {
		t.Errorf("refused store's meta record now says schema %d", schema)
	}
}
