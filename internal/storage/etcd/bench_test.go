package etcd_test

import (
	"fmt"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/storage/etcd"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd/etcdtest"
	"github.com/portcullis-dev/portcullis/internal/storage/storagetest"
)

// BenchmarkUpdate measures durable Updates per second against one embedded
// etcd member (fsync on), with one caller and with 64 concurrent callers.
func BenchmarkUpdate(b *testing.B) {
	for _, callers := range []int{1, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			m := etcdtest.Start(b, etcdtest.Config{})
			s := etcdtest.Open(b, etcd.Options{}, m)
			storagetest.BenchUpdates(b, s, callers)
			b.ReportMetric(float64(s.Conflicts())/float64(b.N), "retries/op")
		})
	}
}

// BenchmarkWatchFollowers measures how fast 100 watchers following the head
// receive changes while 64 callers write (each watcher is its own etcd
// watch; the etcd client multiplexes them over one stream).
func BenchmarkWatchFollowers(b *testing.B) {
	m := etcdtest.Start(b, etcdtest.Config{})
	storagetest.BenchWatchFollowers(b, etcdtest.Open(b, etcd.Options{}, m), 100)
}
