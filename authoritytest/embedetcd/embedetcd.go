package embedetcd

import (
	"testing"

	"github.com/portcullis-dev/portcullis/internal/storage/etcd/etcdtest"
)

// Start starts a single-member etcd server in t.TempDir(), on loopback
// ports chosen at run time, and returns its client endpoints
// (plaintext); it stops when the test ends. It does not fsync: a test's
// data need not survive a power loss, and fsync would make every write
// take milliseconds.
func Start(t testing.TB) []string {
	t.Helper()
	return etcdtest.Endpoints(etcdtest.Start(t, etcdtest.Config{UnsafeNoFsync: true}))
}
