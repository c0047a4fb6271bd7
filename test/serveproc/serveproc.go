package serveproc

import (
	"bufio"
	"encoding/json"
	"fmt"
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

var build = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "portcullis-serveproc-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "portcullis")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/portcullis-dev/portcullis/cmd/portcullis")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
})

// Build returns the portcullis binary, built on the first call.
func Build(t testing.TB) string {
	t.Helper()
	bin, err := build()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// FreeAddr returns a loopback address whose port was free a moment ago;
// an authority keeps it across restarts, so clients keep one target.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Proc is one `portcullis serve` child process.
type Proc struct {
	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited
	logsMu sync.Mutex
	tail   []string // the last log lines
}

// startGuard is how long Start waits for "portcullis serving": a hang
// guard, far beyond any start on a busy machine.
const startGuard = 5 * time.Minute

// Start runs `bin serve` with args and returns once it logged that it
// serves, or fails the test at once when the process exits first.
func Start(t testing.TB, bin string, args ...string) *Proc {
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
	p := &Proc{cmd: cmd, done: make(chan struct{})}
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
	timer := time.NewTimer(startGuard)
	defer timer.Stop()
	select {
	case <-serving:
		return p
	case <-p.done:
		t.Fatalf("portcullis serve exited before serving: %v\n%s", cmd.ProcessState, p.Logs())
	case <-timer.C:
		p.Kill()
		t.Fatalf("portcullis serve did not start within %v\n%s", startGuard, p.Logs())
	}
	return nil
}

// Logs returns the last lines the process logged.
func (p *Proc) Logs() string {
	p.logsMu.Lock()
	defer p.logsMu.Unlock()
	return strings.Join(p.tail, "\n")
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM (a graceful stop) and waits for the process to exit.
func (p *Proc) Stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
}

// Freeze stops the process (SIGSTOP) without ending it: its sockets stay
// open and what is sent to them waits in the kernel, as for a receiver
// that stalls.
func (p *Proc) Freeze() { _ = p.cmd.Process.Signal(syscall.SIGSTOP) }

// Thaw resumes a frozen process (SIGCONT).
func (p *Proc) Thaw() { _ = p.cmd.Process.Signal(syscall.SIGCONT) }
