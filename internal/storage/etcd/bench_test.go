package etcd_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd/etcdtest"
)

// banUpdate is the benchmarks' unit of work, shaped like CreateBan (and
// like the bolt backend's BenchmarkUpdate): a ban, its audit record and its
// event in one durable Update.
func banUpdate(i int64) func(storage.Tx) error {
	id := fmt.Sprintf("ban_%012d", i)
	b := testBan(id, "user-"+strconv.FormatInt(i, 10))
	a := storage.AuditRecord{ID: fmt.Sprintf("aud_%012d", i), Time: base, Action: "ban.create", Actor: "bench", TenantID: b.TenantID, Subject: "user:" + b.Value, TargetID: id}
	return func(tx storage.Tx) error {
		if err := tx.PutBan(b); err != nil {
			return err
		}
		if err := tx.AppendAudit(a); err != nil {
			return err
		}
		return tx.Emit(storage.Event{Kind: storage.EventBanCreated, Time: b.CreateTime, Ban: &b})
	}
}

// BenchmarkUpdate measures durable Updates per second against one embedded
// etcd member (fsync on), with one caller and with 64 concurrent callers.
func BenchmarkUpdate(b *testing.B) {
	for _, callers := range []int{1, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			m := etcdtest.Start(b, etcdtest.Config{})
			s := etcdtest.Open(b, etcd.Options{}, m)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range callers {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						if _, err := s.Update(context.Background(), banUpdate(i)); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			b.ReportMetric(float64(s.Conflicts())/float64(b.N), "retries/op")
		})
	}
}

// BenchmarkWatchFollowers measures how fast 100 watchers following the head
// receive changes while 64 callers write (each watcher is its own etcd
// watch; the etcd client multiplexes them over one stream).
func BenchmarkWatchFollowers(b *testing.B) {
	const watchers = 100
	m := etcdtest.Start(b, etcdtest.Config{})
	s := etcdtest.Open(b, etcd.Options{}, m)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range watchers {
		w, err := s.Watch(ctx, 0)
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			defer w.Close()
			for range b.N {
				if _, err := w.Next(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.ResetTimer()
	var writers sync.WaitGroup
	var next atomic.Int64
	for range 64 {
		writers.Go(func() {
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				if _, err := s.Update(ctx, banUpdate(i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	writers.Wait()
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N*watchers)/b.Elapsed().Seconds(), "deliveries/s")
}
