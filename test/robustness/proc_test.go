package robustness

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

// buildPortcullis builds the portcullis binary once per test binary run
// (without the race detector: it is the process under test, killed at
// random, not the test).
var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "robustness-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "portcullis")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/portcullis-dev/portcullis/cmd/portcullis")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", &buildError{err: err, out: string(out)}
	}
	return bin, nil
})

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + e.out }

func portcullisBin(t *testing.T) string {
	t.Helper()
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// freeAddr returns a loopback address whose port was free a moment ago;
// an authority keeps it across restarts, so clients keep one target.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is one `portcullis serve` child process.
type proc struct {
	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited
	logsMu sync.Mutex
	tail   []string // the last log lines, for failure messages
}

// startProc runs `bin serve` with args and returns once it logged that it
// serves. It gives up after five minutes (a hang guard, far beyond any
// start on a busy machine), or at once when the process exits first.
func startProc(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	// The child reads PORTCULLIS_* variables as flags: give it none.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PORTCULLIS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// Dies with the test binary, even one killed by go test's timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	serving := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			p.logsMu.Lock()
			if len(p.tail) == 30 {
				p.tail = p.tail[1:]
			}
			p.tail = append(p.tail, line)
			p.logsMu.Unlock()
			var l struct {
				Msg string `json:"msg"`
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "portcullis serving" {
				once.Do(func() { close(serving) })
			}
		}
		cmd.Wait()
		close(p.done)
	}()
	timer := time.NewTimer(5 * time.Minute)
	defer timer.Stop()
	select {
	case <-serving:
		return p
	case <-p.done:
		t.Fatalf("portcullis serve exited before serving: %v\n%s", cmd.ProcessState, p.logs())
	case <-timer.C:
		p.kill()
		t.Fatalf("portcullis serve did not start within five minutes\n%s", p.logs())
	}
	return nil
}

func (p *proc) logs() string {
	p.logsMu.Lock()
	defer p.logsMu.Unlock()
	return strings.Join(p.tail, "\n")
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// readKey reads the admin key the first start wrote.
func readKey(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// sigterm asks `portcullis serve` to stop gracefully.
var sigterm = syscall.SIGTERM
