package etcd_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd/etcdtest"
)

func TestZZMeasureBans(t *testing.T) {
	m := etcdtest.Start(t, etcdtest.Config{UnsafeNoFsync: true})
	cli := etcdtest.Client(t, m)
	s := etcdtest.Open(t, etcd.Options{}, m)
	auth := authority.New(s, authority.Config{Logger: slog.New(slog.DiscardHandler)})
	size := func() int64 {
		st, _ := cli.Status(t.Context(), m.Endpoint())
		cli.Compact(t.Context(), st.Header.Revision)
		cli.Defragment(t.Context(), m.Endpoint())
		st, _ = cli.Status(t.Context(), m.Endpoint())
		return st.DbSizeInUse
	}
	logical := func() int64 {
		resp, _ := cli.Get(t.Context(), s.Prefix()+"/", clientv3.WithPrefix())
		var n int64
		for _, kv := range resp.Kvs {
			n += int64(len(kv.Key) + len(kv.Value))
		}
		return n
	}
	u0, l0 := size(), logical()
	const N = 10000
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for i := next.Add(1); i <= N; i = next.Add(1) {
				if _, _, err := auth.CreateBan(context.Background(), authority.System, authority.BanInput{Kind: storage.SubjectUser, Value: fmt.Sprintf("user-%06d", i), Reason: "spam", Policy: "tos-4.2", Duration: "7d"}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	u1, l1 := size(), logical()
	t.Logf("bans: %.0f bytes/ban in use, %.0f logical", float64(u1-u0)/N, float64(l1-l0)/N)
}
