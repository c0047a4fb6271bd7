package server_test

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/transmitter"
	"github.com/portcullis-dev/portcullis/ssf"
)

// BenchmarkSSFPush measures the transmitter's push capacity: b.N SETs
// (account-disabled, one per ban committed before the timer starts) pushed
// to one loopback receiver that verifies each against the JWKS it fetched,
// one at a time in order (window=1) or with up to 32 in flight
// (window=32: portcullis_max_in_flight, the receiver takes them
// concurrently). The receiver shares the machine, so this is a lower bound
// of what the transmitter alone does.
func BenchmarkSSFPush(b *testing.B) {
	for _, alg := range []string{"EdDSA", "RS256"} {
		for _, window := range []int{1, 32} {
			b.Run(alg+"/window="+strconv.Itoa(window), func(b *testing.B) {
				e := newSSFEnv(b, envOptions{}, transmitter.Config{}, true)
				r := newReceiver(b, e.http.URL+"/.well-known/jwks.json")
				r.windowed = window > 1
				e.pushStream(b, e.keyWith("rp", authority.ScopeSignals), r, map[string]any{"signing_alg": alg,
					"delivery": map[string]any{"method": ssf.DeliveryPush, "endpoint_url": r.srv.URL + "/events",
						"authorization_header": r.auth, "portcullis_max_in_flight": window}})
				// Commit the events concurrently: bolt groups the Updates.
				var wg sync.WaitGroup
				const writers = 8
				for w := range writers {
					wg.Go(func() {
						for i := w; i < b.N; i += writers {
							if _, _, err := e.auth.CreateBan(context.Background(), actor, authority.BanInput{
								TenantID: "*", Kind: storage.SubjectUser, Value: "bench-" + strconv.Itoa(i)}); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.ResetTimer()
				e.run()
				r.awaitN(b, b.N)
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "SETs/s")
			})
		}
	}
}
