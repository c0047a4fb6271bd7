package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd/etcdtest"
)

// TestBackend covers what the conformance suite cannot see: the optimistic
// transactions across replicas (separate clients over one prefix), the
// etcd-specific limits, the store ID, and etcd's own compaction. One
// embedded server; each subtest has its prefix.
func TestBackend(t *testing.T) {
	m := etcdtest.Start(t, etcdtest.Config{})

	// Two replicas read-modify-write one record concurrently: no update is
	// lost, and the first attempts, held until both have read, conflict.
	t.Run("NoLostUpdates", func(t *testing.T) {
		prefix := etcdtest.NewPrefix()
		r1 := etcdtest.Open(t, etcd.Options{Prefix: prefix}, m)
		r2 := etcdtest.Open(t, etcd.Options{Prefix: prefix}, m)
		mustUpdate(t, r1, func(tx storage.Tx) error { return tx.PutBan(testBan("ban_ctr", "u")) })
		const perReplica = 15
		var readBoth sync.WaitGroup
		readBoth.Add(2)
		var wg sync.WaitGroup
		for _, s := range []*etcd.Store{r1, r2} {
			wg.Go(func() {
				for i := range perReplica {
					first := true
					_, err := s.Update(t.Context(), func(tx storage.Tx) error {
						b, err := tx.Ban("ban_ctr")
						if err != nil {
							return err
						}
						if i == 0 && first {
							first = false
							readBoth.Done()
							readBoth.Wait() // both read before either commits
						}
						n, _ := strconv.Atoi(b.Reason)
						b.Reason = strconv.Itoa(n + 1)
						return tx.PutBan(b)
					})
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		b, err := getBan(t, r1, "ban_ctr")
		if err != nil {
			t.Fatal(err)
		}
		if b.Reason != strconv.Itoa(2*perReplica) {
			t.Errorf("counter %s after %d increments", b.Reason, 2*perReplica)
		}
		if c := r1.Conflicts() + r2.Conflicts(); c == 0 {
			t.Errorf("no conflict although both first attempts read before either wrote")
		}
	})

	// A range read conflicts with an insert into the range (no phantoms),
	// and with a delete (through the bucket's guard).
	t.Run("RangeConflicts", func(t *testing.T) {
		prefix := etcdtest.NewPrefix()
		a := etcdtest.Open(t, etcd.Options{Prefix: prefix}, m)
		b := etcdtest.Open(t, etcd.Options{Prefix: prefix}, m)
		ses := storage.Session{ID: "ses_1", TenantID: "t1", UserID: "u1", CreateTime: base, ExpireTime: base.Add(1e12)}

		var seen []int
		mustUpdate(t, a, func(tx storage.Tx) error {
			n := 0
			for _, err := range tx.Sessions(storage.SessionQuery{TenantID: "t1", UserID: "u1"}) {
				if err != nil {
					return err
				}
				n++
			}
			seen = append(seen, n)
			if len(seen) == 1 { // another replica logs u1 in meanwhile
				mustUpdate(t, b, func(tx storage.Tx) error { return tx.PutSession(ses) })
			}
			return tx.PutBan(testBan("ban_u1", "u1"))
		})
		if fmt.Sprint(seen) != "[0 1]" {
			t.Errorf("sessions seen by the attempts: %v, want [0 1]", seen)
		}

		k1 := storage.SigningKey{ID: "key_1", Algorithm: "EdDSA", CreateTime: base}
		mustUpdate(t, a, func(tx storage.Tx) error { return tx.PutSigningKey(k1) })
		seen = nil
		mustUpdate(t, a, func(tx storage.Tx) error {
			n := 0
			for _, err := range tx.SigningKeys() {
				if err != nil {
					return err
				}
				n++
			}
			seen = append(seen, n)
			if len(seen) == 1 {
				mustUpdate(t, b, func(tx storage.Tx) error { return tx.DeleteSigningKey("key_1") })
			}
			return tx.PutBan(testBan("ban_x", "x"))
		})
		if fmt.Sprint(seen) != "[1 0]" {
			t.Errorf("signing keys seen by the attempts: %v, want [1 0]", seen)
		}
	})

	// A check reads every prefix of an IPv6 address in two tenants (256
	// ranges) plus many single keys: more comparisons than etcd's default
	// --max-txn-ops, merged so that the commit still goes through, and
	// still catching a conflicting insert.
	t.Run("LargeReadSet", func(t *testing.T) {
		prefix := etcdtest.NewPrefix()
		a := etcdtest.Open(t, etcd.Options{Prefix: prefix}, m)
		b := etcdtest.Open(t, etcd.Options{Prefix: prefix}, m)
		addr := netip.MustParseAddr("2001:db8::7")
		attempts := 0
		mustUpdate(t, a, func(tx storage.Tx) error {
			attempts++
			for _, tenant := range []string{"t1", storage.AllTenants} {
				for bits := addr.BitLen(); bits >= 1; bits-- {
					p, _ := addr.Prefix(bits)
					for _, err := range tx.Bans(storage.BanQuery{TenantID: tenant, Kind: storage.SubjectIP, Value: p.String()}) {
						if err != nil {
							return err
						}
					}
				}
			}
			for i := range 200 {
				if _, err := tx.Session(fmt.Sprintf("ses_%03d", i)); !errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("Session: %v", err)
				}
			}
			if attempts == 1 {
				ban := testBan("ban_ip", "")
				ban.Kind, ban.Value = storage.SubjectIP, "2001:db8::/32"
				mustUpdate(t, b, func(tx storage.Tx) error { return tx.PutBan(ban) })
			}
			return tx.PutBan(testBan("ban_after_check", "u"))
		})
		if attempts != 2 {
			t.Errorf("%d attempts, want 2 (the concurrent IP ban must conflict)", attempts)
		}
	})

	// An index scan reads the records it names in batches, not one request
	// each: 600 sessions of a tenant in a handful of requests.
	t.Run("IndexScanBatches", func(t *testing.T) {
		var calls atomic.Int64
		cli, err := clientv3.New(clientv3.Config{
			Endpoints: []string{m.Endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
			DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				calls.Add(1)
				return invoker(ctx, method, req, reply, cc, opts...)
			})},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		s, err := etcd.New(t.Context(), cli, etcd.Options{Prefix: etcdtest.NewPrefix()})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		const n = 600
		for i := 0; i < n; i += 25 {
			mustUpdate(t, s, func(tx storage.Tx) error {
				for j := i; j < i+25; j++ {
					ses := storage.Session{ID: fmt.Sprintf("ses_%04d", j), TenantID: "t1", UserID: fmt.Sprintf("u%d", j%7), CreateTime: base, ExpireTime: base.Add(1e12)}
					if err := tx.PutSession(ses); err != nil {
						return err
					}
				}
				return nil
			})
		}
		before := calls.Load()
		got := 0
		err = s.View(t.Context(), func(tx storage.ReadTx) error {
			for ses, err := range tx.Sessions(storage.SessionQuery{TenantID: "t1"}) {
				if err != nil {
					return err
				}
				if want := fmt.Sprintf("ses_%04d", got); ses.ID != want {
					return fmt.Errorf("session %s, want %s", ses.ID, want)
				}
				got++
			}
			return nil
		})
		if err != nil || got != n {
			t.Fatalf("scanned %d sessions: %v", got, err)
		}
		if c := calls.Load() - before; c > 20 {
			t.Errorf("scanning %d sessions through an index took %d requests", n, c)
		}
	})

	// An Update that writes more keys than etcd's --max-txn-ops says so,
	// with the sentinel callers split their work on, and writes nothing.
	t.Run("TooManyWrites", func(t *testing.T) {
		s := etcdtest.Open(t, etcd.Options{}, m)
		_, err := s.Update(t.Context(), func(tx storage.Tx) error {
			for i := range 200 {
				if err := tx.PutAPIKey(storage.APIKey{ID: fmt.Sprintf("key_%03d", i), Name: "k"}); err != nil {
					return err
				}
			}
			return nil
		})
		if !errors.Is(err, storage.ErrTxnTooLarge) || !strings.Contains(err.Error(), "--max-txn-ops") {
			t.Fatalf("Update of 200 keys: %v, want ErrTxnTooLarge naming --max-txn-ops", err)
		}
		err = s.View(t.Context(), func(tx storage.ReadTx) error {
			for k, err := range tx.APIKeys() {
				if err != nil {
					return err
				}
				return fmt.Errorf("API key %s was written by the failed Update", k.ID)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	// The store ID is the same for every replica and across restarts, and
	// differs per prefix and once a prefix is wiped.
	t.Run("StoreID", func(t *testing.T) {
		prefix := etcdtest.NewPrefix()
		s1 := etcdtest.Open(t, etcd.Options{Prefix: prefix}, m)
		s2 := etcdtest.Open(t, etcd.Options{Prefix: prefix + "/"}, m)
		other := etcdtest.Open(t, etcd.Options{}, m)
		if s1.StoreID() != s2.StoreID() || len(s1.StoreID()) != 32 {
			t.Fatalf("store IDs of one prefix: %q, %q", s1.StoreID(), s2.StoreID())
		}
		if s1.StoreID() == other.StoreID() {
			t.Fatalf("two prefixes share store ID %q", s1.StoreID())
		}
		cli := etcdtest.Client(t, m)
		if _, err := cli.Delete(t.Context(), prefix+"/", clientv3.WithPrefix()); err != nil {
			t.Fatal(err)
		}
		s3 := etcdtest.Open(t, etcd.Options{Prefix: prefix}, m)
		if s3.StoreID() == s1.StoreID() {
			t.Fatalf("wiped prefix kept store ID %q", s1.StoreID())
		}
	})

	// New over a shared client: Close leaves the client open.
	t.Run("SharedClient", func(t *testing.T) {
		cli := etcdtest.Client(t, m)
		s, err := etcd.New(t.Context(), cli, etcd.Options{Prefix: etcdtest.NewPrefix()})
		if err != nil {
			t.Fatal(err)
		}
		rev := mustUpdate(t, s, putBanEmit(testBan("ban_1", "u")))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Update(t.Context(), putBanEmit(testBan("ban_2", "u"))); !errors.Is(err, storage.ErrClosed) {
			t.Fatalf("Update after Close: %v", err)
		}
		resp, err := cli.Get(t.Context(), s.Prefix()+"/log")
		if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].ModRevision != rev {
			t.Fatalf("client after the store's Close: %v, %v", resp, err)
		}
	})

	// A watcher's Next, interrupted by its context again and again, never
	// loses or repeats a change.
	t.Run("InterruptedNext", func(t *testing.T) {
		s := etcdtest.Open(t, etcd.Options{}, m)
		w, err := s.Watch(t.Context(), 0)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		var revs []int64
		for i := range 20 {
			revs = append(revs, mustUpdate(t, s, putBanEmit(testBan(fmt.Sprintf("ban_%02d", i), "u"))))
		}
		var got []int64
		for len(got) < len(revs) {
			ctx, cancel := context.WithCancel(t.Context())
			if len(got)%3 == 0 {
				cancel()
			}
			c, err := w.Next(ctx)
			cancel()
			if errors.Is(err, context.Canceled) {
				c = next(t, w)
			} else if err != nil {
				t.Fatal(err)
			}
			got = append(got, c.Revision)
		}
		if fmt.Sprint(got) != fmt.Sprint(revs) {
			t.Fatalf("revisions %v, want %v", got, revs)
		}
		wantNothing(t, w)
	})
}

// TestEtcdCompaction: etcd's own compaction of its history (cluster-wide;
// its own server) ends a watch only when it took a change with it.
func TestEtcdCompaction(t *testing.T) {
	m := etcdtest.Start(t, etcdtest.Config{})
	cli := etcdtest.Client(t, m)
	s := etcdtest.Open(t, etcd.Options{}, m)
	r1 := mustUpdate(t, s, putBanEmit(testBan("ban_1", "u")))
	r2 := mustUpdate(t, s, putBanEmit(testBan("ban_2", "u")))
	r3 := mustUpdate(t, s, putBanEmit(testBan("ban_3", "u")))
	// Writes outside the store move etcd's revision past the store's.
	var head int64
	for i := range 5 {
		resp, err := cli.Put(t.Context(), "/elsewhere/"+strconv.Itoa(i), "x")
		if err != nil {
			t.Fatal(err)
		}
		head = resp.Header.Revision
	}
	// A watcher that is behind when etcd compacts.
	behind, err := s.Watch(t.Context(), r1)
	if err != nil {
		t.Fatal(err)
	}
	defer behind.Close()
	if _, err := cli.Compact(t.Context(), head); err != nil {
		t.Fatal(err)
	}

	for _, after := range []int64{0, r1, r2} {
		if _, err := s.Watch(t.Context(), after); !errors.Is(err, storage.ErrCompacted) {
			t.Errorf("Watch(%d) after etcd compacted to %d: %v, want ErrCompacted", after, head, err)
		}
	}
	// Nothing of the store was lost after r3: watching from there works.
	w, err := s.Watch(t.Context(), r3)
	if err != nil {
		t.Fatalf("Watch(%d), the last change: %v", r3, err)
	}
	defer w.Close()
	// A store created after the compaction can be watched from 0.
	fresh := etcdtest.Open(t, etcd.Options{}, m)
	fw, err := fresh.Watch(t.Context(), 0)
	if err != nil {
		t.Fatalf("Watch(0) on a new prefix after compaction: %v", err)
	}
	defer fw.Close()

	r4 := mustUpdate(t, s, putBanEmit(testBan("ban_4", "u")))
	if c := next(t, w); c.Revision != r4 {
		t.Errorf("after compaction the watcher got %d, want %d", c.Revision, r4)
	}
	f1 := mustUpdate(t, fresh, putBanEmit(testBan("ban_f", "u")))
	if c := next(t, fw); c.Revision != f1 {
		t.Errorf("new store's watcher got %d, want %d", c.Revision, f1)
	}
	// The watcher opened before the compaction either got its changes in
	// time (etcd had synced it) or learns they are gone: never a gap.
	var got []int64
	for {
		c, err := behind.Next(waitCtx(t))
		if errors.Is(err, storage.ErrCompacted) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c.Revision)
		if c.Revision == r4 {
			break
		}
	}
	if len(got) > 0 && fmt.Sprint(got) != fmt.Sprint([]int64{r2, r3, r4}) {
		t.Errorf("watcher behind the compaction got %v, want [%d %d %d] or ErrCompacted", got, r2, r3, r4)
	}
}

// TestWatchAcrossDisconnect: the watcher's connection to etcd drops and
// stays down while another replica writes; after the client reconnects,
// the watch resumes after its last revision, losing and repeating nothing.
func TestWatchAcrossDisconnect(t *testing.T) {
	m := etcdtest.Start(t, etcdtest.Config{})
	proxy := etcdtest.NewProxy(t, m)
	prefix := etcdtest.NewPrefix()
	writer := etcdtest.Open(t, etcd.Options{Prefix: prefix}, m)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	watched, err := etcd.Open(ctx, etcd.Options{Prefix: prefix, Endpoints: []string{proxy.Endpoint()}})
	if err != nil {
		t.Fatal(err)
	}
	defer watched.Close()
	w, err := watched.Watch(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var want, got []int64
	write := func(i int) {
		want = append(want, mustUpdate(t, writer, putBanEmit(testBan(fmt.Sprintf("ban_%02d", i), "u"))))
	}
	for i := range 5 {
		write(i)
	}
	for len(got) < 5 {
		got = append(got, next(t, w).Revision)
	}
	proxy.Cut(true)
	for i := 5; i < 10; i++ {
		write(i)
	}
	proxy.Resume()
	for i := 10; i < 12; i++ {
		write(i)
	}
	for len(got) < 12 {
		got = append(got, next(t, w).Revision)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("watcher across a lost connection got %v, want %v", got, want)
	}
	wantNothing(t, w)
}

// TestWatchersBehindTheHub: with a hub window of 4 changes, a watcher that
// does not keep up falls out of it, reads from etcd's history, and comes
// back; one that keeps up stays with the hub. Both see every change once,
// in order.
func TestWatchersBehindTheHub(t *testing.T) {
	defer etcd.SetHubSize(4)()
	m := etcdtest.Start(t, etcdtest.Config{})
	s := etcdtest.Open(t, etcd.Options{}, m)
	fast, err := s.Watch(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	slow, err := s.Watch(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	var want []int64
	var fastGot []int64
	for i := range 30 {
		want = append(want, mustUpdate(t, s, putBanEmit(testBan(fmt.Sprintf("ban_%02d", i), "u"))))
		fastGot = append(fastGot, next(t, fast).Revision)
		if i == 10 {
			// The slow watcher reads a little, then falls behind again.
			for range 3 {
				next(t, slow)
			}
		}
	}
	var slowGot []int64
	for len(slowGot) < 27 {
		slowGot = append(slowGot, next(t, slow).Revision)
	}
	if fmt.Sprint(fastGot) != fmt.Sprint(want) || fmt.Sprint(slowGot) != fmt.Sprint(want[3:]) {
		t.Fatalf("fast watcher %v, slow watcher %v; want %v", fastGot, slowGot, want)
	}
	wantNothing(t, fast)
	wantNothing(t, slow)
	// Both follow the head again.
	rev := mustUpdate(t, s, putBanEmit(testBan("ban_last", "u")))
	for _, w := range []storage.Watcher{fast, slow} {
		if c := next(t, w); c.Revision != rev {
			t.Fatalf("after catching up: change %d, want %d", c.Revision, rev)
		}
	}
}
