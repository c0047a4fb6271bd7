package authority_test

import (
	"context"
	"errors"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/authority"
)

// BenchmarkRefreshInvalid measures refusing an invalid refresh token over
// a real bbolt file (fsync on): malformed (no store access), unknown
// refused from a read transaction (early), and unknown refused in the
// write transaction (writer: the path before the early refusal, kept
// reachable for this comparison). Serial and with parallel callers, as a
// flood of bad tokens arrives. BENCHMARKS.md reports the ratios.
func BenchmarkRefreshInvalid(b *testing.B) {
	a, _ := newRefreshAuthority(b)
	ctx := context.Background()
	if _, err := a.CreateSession(ctx, authority.Actor{Name: "svc"}, authority.SessionInput{UserID: "alice"}); err != nil {
		b.Fatal(err)
	}
	refuse := func(b *testing.B, tok string) {
		if _, err := a.RefreshSession(ctx, authority.Actor{Addr: "192.0.2.1:1"}, tok, ""); !errors.Is(err, authority.ErrTokenInvalid) {
			b.Errorf("refresh with an invalid token: %v", err)
		}
	}
	cases := []struct {
		name  string
		tok   string
		early bool
	}{
		{"malformed", "pcr_garbage", true},
		{"unknown/early", unknownRefreshToken(), true},
		{"unknown/writer", unknownRefreshToken(), false},
	}
	for _, c := range cases {
		b.Run(c.name+"/serial", func(b *testing.B) {
			defer authority.SetRefuseUnknownEarly(c.early)()
			for b.Loop() {
				refuse(b, c.tok)
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			defer authority.SetRefuseUnknownEarly(c.early)()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					refuse(b, c.tok)
				}
			})
		})
	}
}
