package crash

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildPortcullis builds the portcullis binary into a temporary directory
// (without the race detector: it is the process under test, killed at
// random, not the test).
func buildPortcullis(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "portcullis")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/portcullis-dev/portcullis/cmd/portcullis")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a loopback address whose port was free a moment ago.
// The suite reuses it across restarts, so clients keep one target.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// authority is one `portcullis serve` child process.
type authority struct {
	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited
	logsMu sync.Mutex
	tail   []string // the last log lines, for failure messages
}

// startAuthority runs `bin serve` with args and returns once it logged
// that it serves (or fails the test after a minute).
func startAuthority(t *testing.T, bin string, args ...string) *authority {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	// The child reads PORTCULLIS_* variables as flags: give it none.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PORTCULLIS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &authority{cmd: cmd, done: make(chan struct{})}
	serving := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			a.logsMu.Lock()
			if len(a.tail) == 20 {
				a.tail = a.tail[1:]
			}
			a.tail = append(a.tail, line)
			a.logsMu.Unlock()
			var l struct {
				Msg string `json:"msg"`
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "portcullis serving" {
				once.Do(func() { close(serving) })
			}
		}
		cmd.Wait()
		close(a.done)
	}()
	timer := time.NewTimer(time.Minute)
	defer timer.Stop()
	select {
	case <-serving:
		return a
	case <-a.done:
		t.Fatalf("portcullis serve exited before serving: %v\n%s", cmd.ProcessState, a.logs())
	case <-timer.C:
		a.kill()
		t.Fatalf("portcullis serve did not start within a minute\n%s", a.logs())
	}
	return nil
}

func (a *authority) logs() string {
	a.logsMu.Lock()
	defer a.logsMu.Unlock()
	return strings.Join(a.tail, "\n")
}

// kill sends SIGKILL and waits for the process to be gone.
func (a *authority) kill() {
	_ = a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.done
}
