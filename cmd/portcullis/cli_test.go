package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// cliEnv is a running authority and the flags that reach it.
type cliEnv struct {
	t    *testing.T
	addr string
	data string
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	// The connection flags also come from the environment: keep the
	// caller's out of the test.
	for _, v := range []string{"PORTCULLIS_ADDR", "PORTCULLIS_API_KEY", "PORTCULLIS_DATA", "PORTCULLIS_INSECURE", "PORTCULLIS_CA_FILE", "PORTCULLIS_TIMEOUT"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	data := filepath.Join(t.TempDir(), "data")
	addr, stop := startServe(t, data)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &cliEnv{t: t, addr: addr, data: data}
}

// run runs the CLI in-process against the authority.
func (e *cliEnv) run(args ...string) (code int, stdout, stderr string) {
	e.t.Helper()
	var out, errb bytes.Buffer
	args = append(args, "--addr", e.addr, "--data", e.data)
	code = runWith(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// ok runs the CLI and fails the test unless it exits 0.
func (e *cliEnv) ok(args ...string) string {
	e.t.Helper()
	code, out, errs := e.run(args...)
	if code != exitOK {
		e.t.Fatalf("portcullis %s: exit %d, stderr %q", strings.Join(args, " "), code, errs)
	}
	return out
}

func (e *cliEnv) client() *client.Client {
	e.t.Helper()
	key, err := os.ReadFile(filepath.Join(e.data, "admin.key"))
	if err != nil {
		e.t.Fatal(err)
	}
	cl, err := client.Dial(e.addr, client.WithInsecure(), client.WithAPIKey(strings.TrimSpace(string(key))))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cl.Close() })
	return cl
}

func (e *cliEnv) login(user string) *pb.CreateSessionResponse {
	e.t.Helper()
	resp, err := e.client().Sessions.CreateSession(context.Background(), &pb.CreateSessionRequest{UserId: user, ClientIp: "198.51.100.1"})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

var banIDRe = regexp.MustCompile(`\bban_[A-Za-z0-9]+\b`)

func TestCLIBanLifecycle(t *testing.T) {
	e := newCLIEnv(t)
	e.login("u1")

	out := e.ok("ban", "--user", "u1", "--duration", "24h", "--reason", "spam", "--policy", "tos-4.2")
	banID := banIDRe.FindString(out)
	if banID == "" || !strings.Contains(out, "1 session revoked") {
		t.Fatalf("ban output %q: want the ban ID and 1 session revoked", out)
	}

	// The authority now refuses u1, with code and reason.
	_, err := e.client().Sessions.CreateSession(context.Background(), &pb.CreateSessionRequest{UserId: "u1"})
	if !errors.Is(err, client.ErrUserBanned) {
		t.Fatalf("CreateSession after the ban: %v", err)
	}

	out = e.ok("bans")
	if !strings.HasPrefix(out, "BAN_ID") || !strings.Contains(out, banID) || !strings.Contains(out, "user:u1") || !strings.Contains(out, "active") {
		t.Fatalf("bans table:\n%s", out)
	}
	out = e.ok("bans", "-o", "json", "--kind", "user", "--state", "all")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 {
		t.Fatalf("bans -o json: %d lines:\n%s", len(lines), out)
	}
	var b pb.Ban
	if err := protojson.Unmarshal([]byte(lines[0]), &b); err != nil || b.GetBanId() != banID || b.GetPolicy() != "tos-4.2" {
		t.Fatalf("bans -o json: %v %v", &b, err)
	}
	if out := e.ok("bans", "--kind", "ip"); strings.Contains(out, banID) {
		t.Fatalf("bans --kind ip lists a user ban:\n%s", out)
	}

	if out := e.ok("check", "--user", "u1"); !strings.HasPrefix(out, "banned") || !strings.Contains(out, banID) {
		t.Fatalf("check: %q", out)
	}
	if out := e.ok("check", "--user", "u2"); out != "not banned\n" {
		t.Fatalf("check u2: %q", out)
	}

	if out := e.ok("unban", banID, "--reason", "appeal"); !strings.Contains(out, "lifted ban "+banID) {
		t.Fatalf("unban: %q", out)
	}
	if out := e.ok("bans"); strings.Contains(out, banID) {
		t.Fatalf("bans (active) still lists the lifted ban:\n%s", out)
	}
	if out := e.ok("bans", "--state", "lifted"); !strings.Contains(out, banID) {
		t.Fatalf("bans --state lifted:\n%s", out)
	}
	// Lifting twice is refused: exit 1, one line with code and reason.
	code, _, errs := e.run("unban", banID)
	if code != exitError || errs != "portcullis: FailedPrecondition BAN_ALREADY_LIFTED: "+strings.TrimPrefix(strings.TrimSpace(errs), "portcullis: FailedPrecondition BAN_ALREADY_LIFTED: ")+"\n" ||
		!strings.HasPrefix(errs, "portcullis: FailedPrecondition BAN_ALREADY_LIFTED: ") || strings.Count(errs, "\n") != 1 {
		t.Fatalf("second unban: exit %d, stderr %q", code, errs)
	}

	out = e.ok("audit", "--subject", "user:u1")
	if !strings.Contains(out, "ban.create") || !strings.Contains(out, "ban.lift") || !strings.Contains(out, "bootstrap-admin") ||
		!strings.Contains(out, "CHANNEL") || !strings.Contains(out, " grpc ") {
		t.Fatalf("audit:\n%s", out)
	}
	// The CLI calls the API: its changes came through gRPC, none through
	// the console.
	if out := e.ok("audit", "--subject", "user:u1", "--channel", "console"); strings.Contains(out, "ban.create") {
		t.Fatalf("audit --channel console lists gRPC records:\n%s", out)
	}
	out = e.ok("audit", "--action", "ban.lift", "-o", "json", "--since", "1h", "--channel", "grpc")
	var rec pb.AuditRecord
	if err := protojson.Unmarshal([]byte(strings.TrimSpace(out)), &rec); err != nil || rec.GetTargetId() != banID || rec.GetReason() != "appeal" ||
		rec.GetChannel() != "grpc" {
		t.Fatalf("audit -o json: %q %v", out, err)
	}

	// A temporary capability ban with --until, and name output.
	out = e.ok("ban", "--ip", "203.0.113.0/24", "--until", time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "--capability", "post", "-o", "name")
	if !banIDRe.MatchString(strings.TrimSpace(out)) || strings.Count(out, "\n") != 1 {
		t.Fatalf("ban -o name: %q", out)
	}
	if out := e.ok("check", "--ip", "203.0.113.9", "--capability", "post"); !strings.HasPrefix(out, "banned") {
		t.Fatalf("check capability: %q", out)
	}
}

func TestCLISessionsAndRevoke(t *testing.T) {
	e := newCLIEnv(t)
	s1 := e.login("u2")
	e.login("u2")
	e.login("u2")
	id := s1.GetSession().GetSessionId()

	out := e.ok("sessions", "--user", "u2")
	if !strings.HasPrefix(out, "SESSION_ID") || strings.Count(out, "\n") != 4 || !strings.Contains(out, id) {
		t.Fatalf("sessions:\n%s", out)
	}
	if out := e.ok("revoke", id, "--reason", "lost phone"); !strings.Contains(out, "revoked session "+id) {
		t.Fatalf("revoke: %q", out)
	}
	if out := e.ok("sessions", "--user", "u2"); strings.Contains(out, id) {
		t.Fatalf("sessions lists a revoked session:\n%s", out)
	}
	if out := e.ok("sessions", "--user", "u2", "--all", "-o", "json"); strings.Count(out, "\n") != 3 || !strings.Contains(out, "lost phone") {
		t.Fatalf("sessions --all -o json:\n%s", out)
	}
	if out := e.ok("revoke", "--user", "u2"); out != "revoked 2 sessions of user u2\n" {
		t.Fatalf("revoke --user: %q", out)
	}
}

func TestCLIKeysAndAPIKeys(t *testing.T) {
	e := newCLIEnv(t)
	out := e.ok("keys", "list")
	if !strings.HasPrefix(out, "KEY_ID") || strings.Count(out, "\n") != 2 {
		t.Fatalf("keys list:\n%s", out)
	}
	if out := e.ok("keys", "rotate", "--reason", "drill"); !strings.Contains(out, "new signing key") || !strings.Contains(out, "retired key") {
		t.Fatalf("keys rotate: %q", out)
	}
	if out := e.ok("keys", "list", "-o", "json"); strings.Count(out, "\n") != 2 {
		t.Fatalf("keys list -o json after a rotation:\n%s", out)
	}
	// The RS256 SET key: the first rotation makes it (nothing retired),
	// the second retires it; both stay listed for an hour.
	if out := e.ok("keys", "rotate", "--algorithm", "RS256"); !strings.Contains(out, "(RS256)") || strings.Contains(out, "retired key") {
		t.Fatalf("keys rotate --algorithm RS256 (first): %q", out)
	}
	if out := e.ok("keys", "rotate", "--algorithm", "RS256"); !strings.Contains(out, "(RS256)") || !strings.Contains(out, "retired key") {
		t.Fatalf("keys rotate --algorithm RS256: %q", out)
	}
	if out := e.ok("keys", "list"); strings.Count(out, "RS256") != 2 {
		t.Fatalf("keys list after two RS256 rotations:\n%s", out)
	}

	secret := strings.TrimSpace(e.ok("apikeys", "create", "reader", "--scope", "bans:read", "-o", "secret"))
	if secret == "" {
		t.Fatal("apikeys create printed no secret")
	}
	out = e.ok("apikeys", "list")
	if !strings.Contains(out, "reader") || !strings.Contains(out, "bootstrap-admin") {
		t.Fatalf("apikeys list:\n%s", out)
	}
	// The reader key may list bans but not create them: a refused call
	// exits 1 with the code and reason on one line.
	e.ok("bans", "--api-key", secret)
	code, _, errs := e.run("ban", "--user", "x", "--api-key", secret)
	if code != exitError || !strings.HasPrefix(errs, "portcullis: PermissionDenied PERMISSION_DENIED: ") {
		t.Fatalf("ban with a read-only key: exit %d, stderr %q", code, errs)
	}
	// The key also comes from PORTCULLIS_API_KEY.
	t.Setenv("PORTCULLIS_API_KEY", secret)
	if code, _, errs := e.run("ban", "--user", "x"); code != exitError || !strings.Contains(errs, "PERMISSION_DENIED") {
		t.Fatalf("ban with PORTCULLIS_API_KEY=reader: exit %d, stderr %q", code, errs)
	}
	os.Unsetenv("PORTCULLIS_API_KEY")

	var keyID string
	for _, line := range strings.Split(e.ok("apikeys", "list", "-o", "json"), "\n") {
		var k pb.APIKey
		if line != "" && protojson.Unmarshal([]byte(line), &k) == nil && k.GetName() == "reader" {
			keyID = k.GetApiKeyId()
		}
	}
	if out := e.ok("apikeys", "revoke", keyID); !strings.Contains(out, "revoked API key reader") {
		t.Fatalf("apikeys revoke: %q", out)
	}
	code, _, errs = e.run("bans", "--api-key", secret)
	if code != exitError || !strings.HasPrefix(errs, "portcullis: Unauthenticated API_KEY_INVALID: ") {
		t.Fatalf("revoked key: exit %d, stderr %q", code, errs)
	}
}

func TestCLIUsageErrors(t *testing.T) {
	e := newCLIEnv(t)
	for _, args := range [][]string{
		{"ban"}, // no subject
		{"ban", "--user", "a", "--ip", "10.0.0.1"}, // two subjects
		{"ban", "--user", "a", "--until", "tomorrow"},
		{"ban", "--user", "a", "--duration", "1h", "--until", "2030-01-01T00:00:00Z"},
		{"unban"},
		{"unban", "a", "b"},
		{"bans", "--state", "bogus"},
		{"bans", "-o", "yaml"},
		{"bans", "--no-such-flag"},
		{"revoke"},
		{"revoke", "ses_1", "--user", "u"},
		{"sessions"},
		{"check"},
		{"no-such-command"},
		{"keys"},
		{"apikeys", "create"},
	} {
		code, _, errs := e.run(args...)
		if code != exitUsage || strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, "portcullis: ") {
			t.Errorf("portcullis %s: exit %d, stderr %q; want exit 2 and one line", strings.Join(args, " "), code, errs)
		}
	}
	// No key anywhere: a usage error that says where a key comes from.
	var out, errb bytes.Buffer
	code := runWith(context.Background(), []string{"bans", "--addr", e.addr, "--data", t.TempDir()}, &out, &errb)
	if code != exitUsage || !strings.Contains(errb.String(), "PORTCULLIS_API_KEY") {
		t.Fatalf("no key: exit %d, stderr %q", code, errb.String())
	}
	out.Reset()
	if code := runWith(context.Background(), []string{"version"}, &out, &errb); code != exitOK || !strings.HasPrefix(out.String(), "portcullis ") {
		t.Fatalf("version: exit %d, %q", code, out.String())
	}
	out.Reset()
	if code := runWith(context.Background(), []string{"completion", "bash"}, &out, &errb); code != exitOK || !strings.Contains(out.String(), "portcullis") {
		t.Fatal("completion bash printed no script")
	}
}

// lineReader reads lines from r with a deadline per line.
type lineReader struct {
	t     *testing.T
	lines chan string
}

func newLineReader(t *testing.T, r io.Reader) *lineReader {
	lr := &lineReader{t: t, lines: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lr.lines <- sc.Text()
		}
		close(lr.lines)
	}()
	return lr
}

// next returns the next line that contains substr, failing the test after
// the deadline.
func (lr *lineReader) next(substr string, within time.Duration) string {
	lr.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case l, ok := <-lr.lines:
			if !ok {
				lr.t.Fatalf("output ended before a line with %q", substr)
			}
			if strings.Contains(l, substr) {
				return l
			}
		case <-deadline:
			lr.t.Fatalf("no line with %q within %v", substr, within)
		}
	}
}

// startWatch runs `portcullis watch args...` until the test ends.
func startWatch(t *testing.T, args ...string) (lines *lineReader, stderr *lineReader) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	er, ew := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- runWith(ctx, append([]string{"watch"}, args...), pw, ew)
		pw.Close()
		ew.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("watch exited %d after an interrupt", code)
		}
	})
	return newLineReader(t, pr), newLineReader(t, er)
}

func TestCLIWatch(t *testing.T) {
	e := newCLIEnv(t)
	lines, _ := startWatch(t, "--addr", e.addr, "--data", e.data)
	lines.next("snapshot", 5*time.Second)

	banID := banIDRe.FindString(e.ok("ban", "--user", "w1", "--reason", "spam wave"))
	l := lines.next("ban_created", 2*time.Second)
	for _, want := range []string{"ban_id=" + banID, "subject=user:w1", `reason="spam wave"`, "expires=never"} {
		if !strings.Contains(l, want) {
			t.Fatalf("watch line %q lacks %q", l, want)
		}
	}
	e.ok("unban", banID)
	if l := lines.next("ban_lifted", 2*time.Second); !strings.Contains(l, banID) {
		t.Fatalf("watch line %q", l)
	}

	// JSON lines: every line is a WatchResponse.
	jl, _ := startWatch(t, "--addr", e.addr, "--data", e.data, "-o", "json", "--after-revision", "1")
	e.ok("ban", "--device", "d1")
	for {
		line := jl.next("", 2*time.Second)
		var resp pb.WatchResponse
		if err := protojson.Unmarshal([]byte(line), &resp); err != nil {
			t.Fatalf("watch -o json line %q: %v", line, err)
		}
		if resp.GetStoreId() == "" {
			t.Fatalf("watch -o json line without store_id: %q", line)
		}
		if resp.GetChange() != nil && resp.GetChange().GetEvents()[0].GetBanCreated().GetSubject().GetDeviceId() == "d1" {
			break
		}
	}
}

// TestCLIWatchResumes restarts the authority under a running watch: the
// watch reconnects, resumes after its last revision (no snapshot, no
// duplicate) and prints the next ban.
func TestCLIWatchResumes(t *testing.T) {
	for _, v := range []string{"PORTCULLIS_ADDR", "PORTCULLIS_API_KEY", "PORTCULLIS_DATA"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	data := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)
	_, stop := startServeAt(t, data, addr)
	e := &cliEnv{t: t, addr: addr, data: data}

	lines, errs := startWatch(t, "--addr", addr, "--data", data, "--max-backoff", "200ms")
	lines.next("snapshot", 5*time.Second)
	first := banIDRe.FindString(e.ok("ban", "--user", "r1"))
	lines.next(first, 2*time.Second)

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	errs.next("resuming after revision", 5*time.Second)
	_, stop = startServeAt(t, data, addr)
	defer stop()

	second := banIDRe.FindString(e.ok("ban", "--user", "r2"))
	l2 := lines.next("ban_", 10*time.Second)
	if strings.Contains(l2, "snapshot") || !strings.Contains(l2, second) {
		t.Fatalf("after the restart the watch printed %q, want the ban %s and no snapshot", l2, second)
	}
}
