package storagetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
)

// benchTime is the records' time in the benchmarks.
var benchTime = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// BanUpdate is the benchmarks' unit of work, shaped like CreateBan: ban i,
// its audit record and its event in one durable Update.
func BanUpdate(i int64) func(storage.Tx) error {
	id := fmt.Sprintf("ban_%012d", i)
	b := storage.Ban{ID: id, TenantID: "t1", Kind: storage.SubjectUser, Value: fmt.Sprintf("user-%d", i),
		Reason: "bench", CreatedBy: "bench", CreateTime: benchTime}
	a := storage.AuditRecord{ID: fmt.Sprintf("aud_%012d", i), Time: benchTime, Action: "ban.create", Actor: "bench",
		TenantID: b.TenantID, Subject: "user:" + b.Value, TargetID: id}
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

// BenchUpdates runs b.N BanUpdates against s from callers goroutines and
// reports durable Updates per second ("ops/s"). The timer is stopped when
// it returns, so a backend may report metrics of its own after it.
func BenchUpdates(b *testing.B, s storage.Store, callers int) {
	b.ResetTimer()
	writeBans(b, s, callers)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchWatchFollowers measures how fast watchers watching s from its head
// receive b.N changes while 64 callers write them ("deliveries/s").
func BenchWatchFollowers(b *testing.B, s storage.Store, watchers int) {
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
	writeBans(b, s, 64)
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N*watchers)/b.Elapsed().Seconds(), "deliveries/s")
}

// writeBans writes BanUpdates 1..b.N from callers goroutines.
func writeBans(b *testing.B, s storage.Store, callers int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				if _, err := s.Update(context.Background(), BanUpdate(i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
