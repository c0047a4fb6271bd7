package etcd_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd/etcdtest"
)

// TestClusterLosesMember: a three-member etcd cluster loses its leader
// while an authority creates bans through it from several goroutines.
// Every ban whose CreateBan returned success is in ListBans at the end, and
// the store keeps accepting writes on the two members left.
func TestClusterLosesMember(t *testing.T) {
	members := etcdtest.StartCluster(t, 3, etcdtest.Config{})
	// The client reaches each member through a proxy, so that a member's
	// loss also cuts its client connections at once (as a crash would).
	proxies := make([]*etcdtest.Proxy, len(members))
	endpoints := make([]string, len(members))
	for i, m := range members {
		proxies[i] = etcdtest.NewProxy(t, m)
		endpoints[i] = proxies[i].Endpoint()
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	store, err := etcd.Open(ctx, etcd.Options{Prefix: etcdtest.NewPrefix(), Endpoints: endpoints})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	auth := authority.New(store, authority.Config{Logger: slog.New(slog.DiscardHandler)})

	var mu sync.Mutex
	acked := map[string]bool{}
	var failed, total, afterLoss atomic.Int64
	var lost atomic.Bool
	// Closed when the load has reached 100 acknowledged bans before the
	// loss, and 100 after it.
	warm, recovered := make(chan struct{}), make(chan struct{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var seq atomic.Int64
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				cctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
				b, _, err := auth.CreateBan(cctx, authority.System, authority.BanInput{
					Kind: storage.SubjectUser, Value: fmt.Sprintf("user-%d", seq.Add(1)), Reason: "load",
				})
				cancel()
				if err != nil {
					failed.Add(1) // unacknowledged: may or may not be stored
					continue
				}
				mu.Lock()
				acked[b.ID] = true
				mu.Unlock()
				if total.Add(1) == 100 {
					close(warm)
				}
				if lost.Load() && afterLoss.Add(1) == 100 {
					close(recovered)
				}
			}
		})
	}
	wait := func(what string, ch chan struct{}) {
		select {
		case <-ch:
		case <-time.After(15 * time.Second):
			close(stop)
			wg.Wait()
			t.Fatalf("gave up waiting for %s", what)
		}
	}
	wait("writes before the loss", warm)

	leader := -1
	for i, m := range members {
		if s := m.Etcd().Server; s.Leader() == s.MemberID() {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatal("no leader")
	}
	t0 := time.Now()
	proxies[leader].Cut(true)
	members[leader].Stop()
	lost.Store(true)
	t.Logf("stopped the leader %s in %v, after %d acknowledged bans", members[leader].Name, time.Since(t0), total.Load())
	wait("writes after the loss", recovered)
	close(stop)
	wg.Wait()

	var listed []storage.Ban
	page := authority.Page{Size: authority.MaxPageSize}
	for {
		bans, next, err := auth.ListBans(t.Context(), authority.BanFilter{}, page)
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, bans...)
		if next == "" {
			break
		}
		page.Token = next
	}
	have := map[string]bool{}
	for _, b := range listed {
		have[b.ID] = true
	}
	missing := 0
	for id := range acked {
		if !have[id] {
			missing++
		}
	}
	t.Logf("%d bans acknowledged (%d after the loss), %d calls failed, %d bans listed", len(acked), afterLoss.Load(), failed.Load(), len(listed))
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged bans are missing", missing, len(acked))
	}
}
