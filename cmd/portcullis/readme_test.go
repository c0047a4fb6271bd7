package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The README's walkthrough is a test, so that the two cannot drift.
//
// Convention (also written in the README, in the walkthrough:begin
// comment): every ```sh block between the <!-- walkthrough:begin and
// <!-- walkthrough:end --> markers is run, in order, in one bash process
// (so variables set by one block are seen by the next), from a directory
// whose data/ is the authority's data directory. The test substitutes its
// own loopback addresses for 127.0.0.1:7470 (gRPC) and 127.0.0.1:7471
// (HTTP), and sets PORTCULLIS_ADDR for the CLI, whose default address is
// 127.0.0.1:7470. In a block:
//
//	# expect: TEXT       the block's output (stdout and stderr) contains TEXT
//	# expect-exit: N     the block's last command exits with N (default 0)
//
// `portcullis` and `grpcurl` are the binaries built from this repository
// (grpcurl pinned in tools/go.mod), first on PATH.

type readmeBlock struct {
	line    int // in README.md
	script  string
	expects []string
	exit    int
}

var (
	expectRe     = regexp.MustCompile(`(?m)^# expect: (.*)$`)
	expectExitRe = regexp.MustCompile(`(?m)^# expect-exit: (\d+)$`)
)

// walkthroughBlocks extracts the walkthrough's ```sh blocks from the README.
func walkthroughBlocks(t *testing.T, readme string) []readmeBlock {
	t.Helper()
	var blocks []readmeBlock
	in, inBlock := false, false
	var cur readmeBlock
	var body strings.Builder
	sc := bufio.NewScanner(strings.NewReader(readme))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "<!-- walkthrough:begin"):
			in = true
		case strings.HasPrefix(line, "<!-- walkthrough:end"):
			in = false
		case in && !inBlock && strings.TrimSpace(line) == "```sh":
			inBlock, cur = true, readmeBlock{line: n + 1}
			body.Reset()
		case inBlock && strings.TrimSpace(line) == "```":
			inBlock = false
			cur.script = body.String()
			for _, m := range expectRe.FindAllStringSubmatch(cur.script, -1) {
				cur.expects = append(cur.expects, m[1])
			}
			if m := expectExitRe.FindStringSubmatch(cur.script); m != nil {
				cur.exit, _ = strconv.Atoi(m[1])
			}
			blocks = append(blocks, cur)
		case inBlock:
			body.WriteString(line + "\n")
		}
	}
	if len(blocks) == 0 {
		t.Fatal("README.md has no walkthrough blocks between <!-- walkthrough:begin and <!-- walkthrough:end -->")
	}
	return blocks
}

func TestREADMEWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	for _, tool := range []string{"bash", "curl", "timeout", "sed", "tee", "grep", "head"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := walkthroughBlocks(t, string(readme))

	bin := t.TempDir()
	build := func(args ...string) {
		cmd := exec.Command("go", append([]string{"build"}, args...)...)
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %v: %v\n%s", args, err, out)
		}
	}
	build("-o", filepath.Join(bin, "portcullis"), "./cmd/portcullis")
	build("-modfile=tools/go.mod", "-o", filepath.Join(bin, "grpcurl"), "github.com/fullstorydev/grpcurl/cmd/grpcurl")

	work := t.TempDir()
	grpcAddr, httpAddr := startWalkthroughAuthority(t, bin, work)

	// One bash runs every block; each block's output goes to its own file
	// and its last command's exit status to another.
	var script strings.Builder
	script.WriteString("set -o pipefail\n")
	for i, b := range blocks {
		s := strings.NewReplacer("127.0.0.1:7470", grpcAddr, "127.0.0.1:7471", httpAddr).Replace(b.script)
		fmt.Fprintf(&script, "{\n%s\n} >out.%d 2>&1\necho $? >rc.%d\n", s, i, i)
	}
	sh := exec.Command("bash", "-c", script.String())
	sh.Dir = work
	sh.Env = append(cleanEnv(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "PORTCULLIS_ADDR="+grpcAddr)
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	for i, b := range blocks {
		out, _ := os.ReadFile(filepath.Join(work, fmt.Sprintf("out.%d", i)))
		rcText, _ := os.ReadFile(filepath.Join(work, fmt.Sprintf("rc.%d", i)))
		rc, err := strconv.Atoi(strings.TrimSpace(string(rcText)))
		if err != nil {
			t.Fatalf("README.md:%d: the block did not run", b.line)
		}
		if rc != b.exit {
			t.Errorf("README.md:%d: exit status %d, want %d\n%s\noutput:\n%s", b.line, rc, b.exit, b.script, out)
			continue
		}
		for _, want := range b.expects {
			if !strings.Contains(string(out), want) {
				t.Errorf("README.md:%d: output lacks %q\n%s\noutput:\n%s", b.line, want, b.script, out)
			}
		}
	}
}

// cleanEnv is the environment without PORTCULLIS_* variables, so that the
// README's commands see only what the README sets.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PORTCULLIS_") {
			env = append(env, kv)
		}
	}
	return env
}

// startWalkthroughAuthority starts `portcullis serve` in work on two free
// loopback ports, as the README's reader does with `make run`, and returns
// its addresses once it logs that it serves. A port another test took
// between freeAddr and the bind makes serve exit: it is started again on
// other ports. Any other exit fails the test with serve's log.
func startWalkthroughAuthority(t *testing.T, bin, work string) (grpcAddr, httpAddr string) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		grpcAddr, httpAddr = freeAddr(t), freeAddr(t)
		ctx, cancel := context.WithCancel(context.Background())
		srv := exec.CommandContext(ctx, filepath.Join(bin, "portcullis"), "serve", "--data", "data",
			"--listen", grpcAddr, "--http-listen", httpAddr, "--checkpoint-interval", "500ms")
		srv.Dir = work
		srv.Env = cleanEnv()
		logs, err := srv.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		ready, exited := make(chan struct{}), make(chan struct{})
		var lines []string // serve's log until it serves or exits
		go func() {
			defer close(exited)
			sc := bufio.NewScanner(logs)
			for sc.Scan() {
				var l struct{ Msg string }
				if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "portcullis serving" {
					close(ready)
					for sc.Scan() {
					}
					return
				}
				lines = append(lines, sc.Text())
			}
		}()
		select {
		case <-ready:
			t.Cleanup(func() { cancel(); _ = srv.Wait() })
			return grpcAddr, httpAddr
		case <-exited:
			_ = srv.Wait()
			cancel()
			log := strings.Join(lines, "\n")
			if strings.Contains(log, "address already in use") && attempt < 5 {
				continue
			}
			t.Fatalf("the authority exited before serving:\n%s", log)
		case <-time.After(time.Minute): // a hang guard, not a deadline
			cancel()
			_ = srv.Wait()
			<-exited
			t.Fatalf("the authority did not start within a minute:\n%s", strings.Join(lines, "\n"))
		}
	}
}
