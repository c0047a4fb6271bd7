package authoritytest

import (
	"log/slog"
	"testing"
)

// StartReplicas starts n replicas of one authority for the test, as a
// fleet of `portcullis serve --store etcd://...` shares one etcd store:
// every replica serves the same data (one store_id, one revision
// sequence, one AdminKey), each on its own in-memory listener and its own
// loopback TCP port (Loopback is implied), so that a client dialled with
// the replicas' addresses joined by commas (client.Dial("a,b,c")) fails
// over among them. opts.EtcdEndpoints is required (embedetcd.Start gives
// one); the replicas share opts.EtcdPrefix, or a fresh prefix. Each
// replica stops and restarts on its own (Stop, Restart) and stops when
// the test ends.
func StartReplicas(t testing.TB, n int, opts Options) []*Authority {
	t.Helper()
	if len(opts.EtcdEndpoints) == 0 {
		t.Fatalf("authoritytest: StartReplicas needs Options.EtcdEndpoints: replicas share an etcd store")
	}
	if opts.EtcdPrefix == "" {
		prefix, err := newPrefix()
		if err != nil {
			t.Fatalf("authoritytest: %v", err)
		}
		opts.EtcdPrefix = prefix
	}
	if opts.Clock == nil {
		opts.Clock = NewClock(DefaultStart) // one clock for all
	}
	opts.Loopback = true
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	rs := make([]*Authority, n)
	for i := range rs {
		adminKey := ""
		if i > 0 {
			// The first replica bootstrapped the store; its admin key is
			// every replica's.
			adminKey = rs[0].AdminKey
		}
		a, err := newAuthority(opts, log, "", adminKey)
		if err != nil {
			t.Fatalf("authoritytest: replica %d: %v", i, err)
		}
		a.fail = func(format string, args ...any) {
			t.Helper()
			t.Fatalf(format, args...)
		}
		t.Cleanup(func() {
			if err := a.Close(); err != nil {
				t.Errorf("authoritytest: replica %d: %v", i, err)
			}
		})
		rs[i] = a
	}
	return rs
}
