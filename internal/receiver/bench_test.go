package receiver_test

import (
	"net/http"
	"sync"
	"testing"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/receiver"
	"github.com/portcullis-dev/portcullis/ssf"
)

// BenchmarkReceiveBan compares, on one authority (bbolt), a pushed RISC
// account-disabled SET that bans a new user (HTTP, signature, replay
// check, CheckBan, CreateBan, the ReceivedSET and audit Update) with an
// operator's CreateBan of a new user over gRPC (the same ban, without the
// signal's work). The SETs are signed before the timer: signing is the
// transmitter's cost.
func BenchmarkReceiveBan(b *testing.B) {
	e := newEnv(b, "push")
	b.Run("push", func(b *testing.B) {
		tokens := make([]string, b.N)
		for i := range tokens {
			jti := e.jti() // unique across the runs of this sub-benchmark
			tokens[i] = e.signed(jti, ssf.EventAccountDisabled, user("push-"+jti), ssf.AccountDisabled{})
		}
		b.ResetTimer()
		for i := range b.N {
			if code, body, err := e.tx.Push(e.ctx, tokens[i], ""); err != nil || code != http.StatusAccepted {
				b.Fatalf("push: %d %v %v", code, body, err)
			}
		}
	})
	// SETs chained by portcullis_prev_jti, pushed by as many senders as
	// the receiver asks a transmitter to keep in flight, in the chain's
	// order of sending: the receiver applies runs of them per commit.
	b.Run("push-window", func(b *testing.B) {
		sets := make([]ssf.SET, b.N)
		for i := range sets {
			jti := e.jti()
			sets[i] = e.tx.SET(aud, jti, e.a.Clock().Now(), user("window-"+jti), ssf.EventAccountDisabled, ssf.AccountDisabled{})
		}
		tokens := e.chained(sets...)
		next := make(chan string, len(sets))
		for _, s := range sets {
			next <- tokens[s.JTI]
		}
		close(next)
		b.ResetTimer()
		var wg sync.WaitGroup
		for range receiver.DefaultPushInFlight {
			wg.Go(func() {
				for tok := range next {
					if code, body, err := e.tx.Push(e.ctx, tok, ""); err != nil || code != http.StatusAccepted {
						b.Errorf("push: %d %v %v", code, body, err)
						return
					}
				}
			})
		}
		wg.Wait()
	})
	b.Run("grpc", func(b *testing.B) {
		for range b.N {
			if _, err := e.admin.Bans.CreateBan(e.ctx, &pb.CreateBanRequest{TenantId: "acme",
				Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "grpc-" + e.jti()}}, Reason: "bench"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
