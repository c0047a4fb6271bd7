package interceptors_test

import (
	"testing"

	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/client"
	"github.com/portcullis-dev/portcullis/interceptors"
)

// BenchmarkConsistency is the latency of one admitted unary call through
// the server interceptors (gRPC over bufconn, same process as the
// authority) for each consistency: Local (the default, the mirror alone),
// CatchUp (GetRevision round trip + the mirror's catch-up, which is
// immediate when it is current) and Authority (VerifySession round trip).
func BenchmarkConsistency(b *testing.B) {
	f := startFleet(b, authoritytest.Options{})
	m, _ := f.mirror("bench", client.MirrorOptions{})
	const method = "/grpc.testing.TestService/UnaryCall"
	tok := f.login("alice")
	for _, c := range []struct {
		name string
		opts []interceptors.Option
	}{
		{"local", nil},
		{"catch-up", []interceptors.Option{interceptors.WithStrictMethods(method)}},
		{"verify-session", []interceptors.Option{interceptors.WithAuthorityMethods(f.admin.Sessions, method)}},
	} {
		b.Run(c.name, func(b *testing.B) {
			svc := serve(b, m, chatService(), c.opts)
			ctx := bearer(tok)
			for b.Loop() {
				if _, err := svc.UnaryCall(ctx, &testgrpc.SimpleRequest{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
