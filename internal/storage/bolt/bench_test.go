package bolt_test

import (
	"fmt"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt/bolttest"
	"github.com/portcullis-dev/portcullis/internal/storage/storagetest"
)

// BenchmarkUpdate measures durable (fsynced) Updates per second with one
// caller and with 64 concurrent callers sharing group commits.
func BenchmarkUpdate(b *testing.B) {
	for _, callers := range []int{1, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			s := bolttest.Open(b, bolt.Options{})
			commits := s.Commits()
			storagetest.BenchUpdates(b, s, callers)
			b.ReportMetric(float64(b.N)/float64(s.Commits()-commits), "updates/commit")
		})
	}
}

// BenchmarkWatchFollowers measures how fast 100 watchers following the head
// receive changes, with the in-memory cache and without it (every watcher
// then reads each change from the file).
func BenchmarkWatchFollowers(b *testing.B) {
	for _, c := range []struct {
		name  string
		cache int
	}{{"cache", 0}, {"nocache", -1}} {
		b.Run(c.name, func(b *testing.B) {
			storagetest.BenchWatchFollowers(b, bolttest.Open(b, bolt.Options{WatchCache: c.cache}), 100)
		})
	}
}
