package robustness

import (
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/portcullis-dev/portcullis/client"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/test/serveproc"
)

// fastReconnect makes a client reconnect within ~100 ms of a restart (the
// default backoff grows to seconds, which would only make runs slower).
var fastReconnect = grpc.WithConnectParams(grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 100 * time.Millisecond},
	MinConnectTimeout: time.Second,
})

// boltRetain is the authority's --retain-revisions: small, so that a long
// run resumes from revisions it no longer retains.
const boltRetain = 1000

// boltCluster is one `portcullis serve` on a bbolt file, SIGKILLed and
// restarted on the same file.
type boltCluster struct {
	bin, data, db string
	args          []string
	auth          *serveproc.Proc
	load          []*client.Client
	watch         []*client.Client
	// faults: four SIGKILLs to one graceful stop, in shuffled rounds.
	faults rounds
}

func startBolt(t *testing.T) *boltCluster {
	b := &boltCluster{bin: serveproc.Build(t), data: filepath.Join(t.TempDir(), "data"),
		faults: rounds{kinds: []string{"kill-authority", "kill-authority", "kill-authority", "kill-authority", "stop-authority"}}}
	b.db = filepath.Join(b.data, "portcullis.db")
	addr := serveproc.FreeAddr(t)
	b.args = []string{
		"--listen", addr, "--http-listen", "", "--data", b.data, "--log-level", "info",
		"--checkpoint-interval", "200ms", "--retain-revisions", strconv.Itoa(boltRetain),
		"--access-ttl", "2h",
		// The clients are one API key and one IP: lift the abuse limits.
		"--refresh-rate", "-1", "--create-session-rate", "-1",
	}
	b.auth = serveproc.Start(t, b.bin, b.args...)
	t.Cleanup(func() { b.auth.Kill() })
	key := readKey(t, b.data)
	dial := func() *client.Client {
		c, err := client.Dial(addr, client.WithAPIKey(key), client.WithInsecure(), client.WithDialOptions(fastReconnect))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	for range 4 {
		b.load = append(b.load, dial())
	}
	b.watch = []*client.Client{dial(), dial()}
	return b
}

func (b *boltCluster) loadClients() []*client.Client  { return b.load }
func (b *boltCluster) watchClients() []*client.Client { return b.watch }
func (b *boltCluster) contiguous() bool               { return true }

// retained: every commit trims the log to the last boltRetain revisions
// (internal/storage/bolt trimEvents), so those after head-boltRetain are
// there (a margin of 10 for the commit that made head).
func (b *boltCluster) retained(rev, head int64) bool { return rev >= head-boltRetain+10 }

// inject kills the authority (SIGKILL, or SIGTERM for a graceful stop),
// checks the file, and starts it again on the same file and address.
func (b *boltCluster) inject(t *testing.T, rng *rand.Rand) string {
	kind := b.faults.next(rng)
	if kind == "stop-authority" {
		b.auth.Stop()
	} else {
		b.auth.Kill()
	}
	if err := bolt.Check(b.db); err != nil {
		t.Fatalf("%s: bolt.Check: %v", kind, err)
	}
	b.auth = serveproc.Start(t, b.bin, b.args...)
	return kind
}

// finish kills the authority one last time and checks the file: bbolt's
// page check and the store's invariants.
func (b *boltCluster) finish(t *testing.T) {
	b.auth.Kill()
	if err := bolt.Check(b.db); err != nil {
		t.Fatalf("bolt.Check after the final SIGKILL: %v", err)
	}
}

// TestRobustnessBolt is the bbolt run: the mixed load against one
// authority that is killed and restarted at random moments.
func TestRobustnessBolt(t *testing.T) {
	sz := runSize(t)
	r := robustness(t, "bbolt", startBolt(t), sz, runSeed(t))
	if !r.OK() {
		t.Fatal("the run failed its checks (above)")
	}
}
