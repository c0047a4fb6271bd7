package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// childProc is one child process of a -procs fleet, as the parent sees it.
type childProc struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	first   int           // index of its first mirror in the fleet
	mirrors int           // how many it runs
	synced  chan struct{} // closed at its "synced" line
	done    chan struct{} // closed once its output ended and it exited
	revs    []int64       // its "rev" lines, by mirror (valid after done)
	err     error         // its exit status, a malformed line or a read error (valid after done)
}

// split returns how many of n mirrors each of procs children runs: n/procs
// each, the remainder one more in the first ones; no child without a
// mirror.
func split(n, procs int) []int {
	procs = min(procs, n)
	out := make([]int, procs)
	for i := range out {
		out[i] = n / procs
		if i < n%procs {
			out[i]++
		}
	}
	return out
}

// startChildren runs n mirrors in procs child processes (this binary in its
// child mode, child.go) and returns once all report synced. Each applied
// event a child reports goes to applied with the child's timestamp. On an
// error every child is killed; stop closes their stdin (which ends them),
// waits for them and checks that each mirror reported its final revision.
func startChildren(a *authorityEnv, n, procs int, progress bool, applied appliedFunc) (*fleet, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	prog := map[bool]string{true: "on", false: "off"}[progress]
	started := time.Now()
	var children []*childProc
	kill := func() {
		for _, c := range children {
			c.stdin.Close()
			c.cmd.Process.Kill()
		}
		for _, c := range children {
			<-c.done
		}
	}
	first := 0
	for _, m := range split(n, procs) {
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(),
			childEnv+"="+strconv.Itoa(m), childAuthorityEnv+"="+a.addr, childKeyEnv+"="+a.key, childProgressEnv+"="+prog)
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			kill()
			return nil, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			stdin.Close()
			kill()
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			stdin.Close()
			kill()
			return nil, fmt.Errorf("start a child: %w", err)
		}
		c := &childProc{cmd: cmd, stdin: stdin, first: first, mirrors: m, synced: make(chan struct{}), done: make(chan struct{})}
		first += m
		children = append(children, c)
		go c.read(stdout, applied)
	}
	timeout := time.NewTimer(2 * time.Minute)
	defer timeout.Stop()
	for _, c := range children {
		select {
		case <-c.synced:
		case <-c.done:
			kill()
			return nil, fmt.Errorf("child %d (mirrors %d-%d) ended before its mirrors synced: %v", c.cmd.Process.Pid, c.first, c.first+c.mirrors-1, c.err)
		case <-timeout.C:
			kill()
			return nil, errors.New("child mirrors not synced after 2 minutes")
		}
	}
	synced := time.Since(started)

	stop := func() ([]int64, error) {
		for _, c := range children {
			c.stdin.Close()
		}
		timeout := time.NewTimer(30 * time.Second)
		defer timeout.Stop()
		var errs []error
		var revs []int64
		for _, c := range children {
			select {
			case <-c.done:
			case <-timeout.C:
				kill()
				return nil, errors.New("children still running 30s after their stdin closed")
			}
			if err := c.err; err != nil {
				errs = append(errs, fmt.Errorf("child %d: %w", c.cmd.Process.Pid, err))
				continue
			}
			if len(c.revs) != c.mirrors {
				errs = append(errs, fmt.Errorf("child %d reported %d final revisions for %d mirrors", c.cmd.Process.Pid, len(c.revs), c.mirrors))
			}
			revs = append(revs, c.revs...)
		}
		return revs, errors.Join(errs...)
	}
	return &fleet{mirrors: n, synced: synced, stop: stop, abort: kill}, nil
}

// read parses the child's output until it ends, then waits for the
// child to exit (Wait must follow the last read of its stdout).
func (c *childProc) read(stdout io.Reader, applied appliedFunc) {
	defer close(c.done)
	var errs []error
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if err := c.line(sc.Text(), applied); err != nil && len(errs) == 0 {
			errs = append(errs, err)
		}
	}
	errs = append(errs, sc.Err(), c.cmd.Wait())
	c.err = errors.Join(errs...)
}

func (c *childProc) line(s string, applied appliedFunc) error {
	f := strings.SplitN(s, " ", 5)
	switch {
	case f[0] == "synced" && len(f) == 1:
		select {
		case <-c.synced:
			return errors.New("a child said synced twice")
		default:
			close(c.synced)
		}
		return nil
	case f[0] == "e" && len(f) == 5:
		m, err := strconv.Atoi(f[1])
		if err != nil || m < 0 || m >= c.mirrors {
			return fmt.Errorf("line %q: no such mirror in this child", s)
		}
		ns, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return fmt.Errorf("line %q: %w", s, err)
		}
		applied(c.first+m, eventKey{kind: f[3], id: f[4]}, ns)
		return nil
	case f[0] == "rev" && len(f) == 3:
		rev, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return fmt.Errorf("line %q: %w", s, err)
		}
		c.revs = append(c.revs, rev)
		return nil
	}
	return fmt.Errorf("unexpected line %q from a child", s)
}
