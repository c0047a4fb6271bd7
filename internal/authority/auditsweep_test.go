package authority_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt/bolttest"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd/etcdtest"
)

// clock is a settable clock for the authority under test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// backends are the stores the audit sweep runs on: bbolt, etcd with its
// default --max-txn-ops, and etcd bounded far below a batch (the sweep
// halves its batches until they fit).
func backends(t *testing.T) map[string]func(t *testing.T) storage.Store {
	return map[string]func(t *testing.T) storage.Store{
		"bolt": func(t *testing.T) storage.Store { return bolttest.Open(t, bolt.Options{}) },
		"etcd": func(t *testing.T) storage.Store {
			return etcdtest.Open(t, etcd.Options{}, etcdtest.Start(t, etcdtest.Config{UnsafeNoFsync: true}))
		},
		"etcd-max-txn-ops-40": func(t *testing.T) storage.Store {
			m := etcdtest.Start(t, etcdtest.Config{MaxTxnOps: 40, UnsafeNoFsync: true})
			return etcdtest.Open(t, etcd.Options{MaxTxnOps: 40}, m)
		},
	}
}

func auditTrail(t *testing.T, st storage.Store) []storage.AuditRecord {
	t.Helper()
	var out []storage.AuditRecord
	err := st.View(context.Background(), func(tx storage.ReadTx) error {
		out = out[:0]
		for r, err := range tx.AuditRecords(storage.AuditQuery{}) {
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSweepAudit(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			a := authority.New(st, authority.Config{Clock: c.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			ctx := context.Background()
			deny := func(n int, why string) {
				t.Helper()
				for i := range n {
					a.RecordDenied(ctx, authority.Actor{Addr: fmt.Sprintf("192.0.2.%d:1234", i%250)}, "/m", why)
				}
			}
			const old = 230 // more than two batches
			deny(old, "old")
			c.Advance(30 * 24 * time.Hour)
			deny(5, "recent")
			if n := len(auditTrail(t, st)); n != old+5 {
				t.Fatalf("%d audit records written, want %d", n, old+5)
			}

			// Exactly at the retention, the recent ones' age is the
			// retention: they stay.
			c.Advance(authority.DefaultAuditRetention)
			res, err := a.SweepAudit(ctx, authority.DefaultAuditRetention)
			if err != nil {
				t.Fatal(err)
			}
			if res.Records != old {
				t.Errorf("swept %d records, want %d", res.Records, old)
			}
			// Denied calls have no subject or actor: one key each, so
			// even under --max-txn-ops 40 a whole batch fits (halving is
			// TestSweepAuditIndexedRecords').
			minUpdates := (old + authority.AuditSweepBatch - 1) / authority.AuditSweepBatch
			if res.Updates < minUpdates || res.Updates > old {
				t.Errorf("swept in %d Updates, want at least %d", res.Updates, minUpdates)
			}
			left := auditTrail(t, st)
			if len(left) != 5 {
				t.Fatalf("%d records left, want the 5 recent ones", len(left))
			}
			for _, r := range left {
				if r.Reason != "recent" {
					t.Errorf("record %s (%s, %s) survived the sweep", r.ID, r.Reason, r.Time)
				}
			}

			// Nothing more to sweep; retention 0 keeps everything.
			if res, err := a.SweepAudit(ctx, authority.DefaultAuditRetention); err != nil || res.Records != 0 {
				t.Errorf("second sweep: %+v, %v; want nothing", res, err)
			}
			c.Advance(time.Nanosecond)
			if res, err := a.SweepAudit(ctx, 0); err != nil || res.Records != 0 || len(auditTrail(t, st)) != 5 {
				t.Errorf("sweep with retention 0: %+v, %v; want nothing deleted", res, err)
			}
			// One nanosecond past the retention, they go.
			if res, err := a.SweepAudit(ctx, authority.DefaultAuditRetention); err != nil || res.Records != 5 {
				t.Errorf("sweep past the recent ones' retention: %+v, %v; want 5", res, err)
			}
			if _, err := a.SweepAudit(ctx, -time.Hour); !errors.Is(err, authority.ErrInvalidArgument) {
				t.Errorf("negative retention: %v, want ErrInvalidArgument", err)
			}
		})
	}
}

// Sweepers on two replicas over one etcd store at once delete every old
// record once: the counts add up to the records deleted.
func TestSweepAuditConcurrentReplicas(t *testing.T) {
	m := etcdtest.Start(t, etcdtest.Config{UnsafeNoFsync: true})
	prefix := etcdtest.NewPrefix()
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var replicas []*authority.Authority
	var st storage.Store
	for range 2 {
		st = etcdtest.Open(t, etcd.Options{Prefix: prefix}, m)
		replicas = append(replicas, authority.New(st, authority.Config{Clock: c.Now, Logger: quiet}))
	}
	ctx := context.Background()
	const old = 300
	for i := range old {
		replicas[i%2].RecordDenied(ctx, authority.Actor{Addr: "192.0.2.1:1"}, "/m", "old")
	}
	c.Advance(time.Hour)
	replicas[0].RecordDenied(ctx, authority.Actor{Addr: "192.0.2.1:1"}, "/m", "recent")

	var wg sync.WaitGroup
	results := make([]authority.AuditSweepResult, 2)
	errs := make([]error, 2)
	for i, a := range replicas {
		wg.Go(func() { results[i], errs[i] = a.SweepAudit(ctx, 30*time.Minute) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := results[0].Records + results[1].Records; got != old {
		t.Errorf("replicas swept %d + %d records, want %d in all", results[0].Records, results[1].Records, old)
	}
	if left := auditTrail(t, st); len(left) != 1 || left[0].Reason != "recent" {
		t.Errorf("left after the sweeps: %+v, want the recent record alone", left)
	}
}

// TestSweepAuditIndexedRecords: records with a subject and an actor have
// two index entries each, which the sweep deletes with them. A batch still
// fits one etcd transaction under the default --max-txn-ops: the sweep
// takes ceil(n/AuditSweepBatch) Updates, none refused and halved (which
// would take more); under --max-txn-ops 40 it halves and takes more. The
// indexed listings hold no swept record afterwards (over bbolt an index
// entry left behind is reported as corruption).
func TestSweepAuditIndexedRecords(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			const old = 3*authority.AuditSweepBatch + 5
			for first := 0; first < old+2; first += 10 { // 10 records (30 keys) per Update
				_, err := st.Update(context.Background(), func(tx storage.Tx) error {
					for i := first; i < min(first+10, old+2); i++ {
						at := start.Add(time.Duration(i) * time.Second)
						if i >= old {
							at = start.Add(100 * 24 * time.Hour) // within the retention
						}
						r := storage.AuditRecord{ID: fmt.Sprintf("aud_%05d", i), Time: at, Action: "ban.create",
							Actor: fmt.Sprintf("key-%d", i%3), Subject: fmt.Sprintf("user:u%d", i%7), TenantID: "t1"}
						if err := tx.AppendAudit(r); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			c := &clock{now: start.Add(100*24*time.Hour + time.Hour)}
			a := authority.New(st, authority.Config{Clock: c.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			res, err := a.SweepAudit(context.Background(), authority.DefaultAuditRetention)
			if err != nil {
				t.Fatal(err)
			}
			full := (old + authority.AuditSweepBatch - 1) / authority.AuditSweepBatch
			switch {
			case res.Records != old:
				t.Errorf("swept %d records, want %d", res.Records, old)
			case name == "etcd-max-txn-ops-40" && res.Updates <= full:
				t.Errorf("swept in %d Updates under --max-txn-ops 40, want more than %d (batches halved)", res.Updates, full)
			case name != "etcd-max-txn-ops-40" && res.Updates != full:
				t.Errorf("swept in %d Updates, want %d (batches of %d, none halved)", res.Updates, full, authority.AuditSweepBatch)
			}
			err = st.View(context.Background(), func(tx storage.ReadTx) error {
				for _, q := range []storage.AuditQuery{{Subject: "user:u0"}, {Subject: "user:u3"}, {Actor: "key-1"}, {Actor: "key-2"}} {
					var ids []string
					for r, err := range tx.AuditRecords(q) {
						if err != nil {
							return fmt.Errorf("%+v: %w", q, err)
						}
						ids = append(ids, r.ID)
					}
					for _, id := range ids {
						if id < fmt.Sprintf("aud_%05d", old) {
							t.Errorf("%+v lists swept record %s", q, id)
						}
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
