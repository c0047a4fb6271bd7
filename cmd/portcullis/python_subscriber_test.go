package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// pythonTools finds what the Python subscriber needs: protoc
// (protobuf-compiler), grpc_python_plugin (protobuf-compiler-grpc) and a
// python3 that imports grpc, google.protobuf, jwt and cryptography
// (python3-grpcio, python3-protobuf, python3-jwt, python3-cryptography).
// Debian's python3 comes first: another python3 on PATH (pyenv, a venv)
// does not see the Debian packages. .ci/run installs them; missing, the
// test skips, except under CI=true, where it fails.
func pythonTools(t *testing.T) (protoc, plugin, python string) {
	t.Helper()
	missing := func(what string) {
		msg := what + " missing: apt-get install protobuf-compiler protobuf-compiler-grpc python3-grpcio python3-protobuf python3-jwt python3-cryptography (.ci/run does)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	var err error
	if protoc, err = exec.LookPath("protoc"); err != nil {
		missing("protoc")
	}
	if plugin, err = exec.LookPath("grpc_python_plugin"); err != nil {
		missing("grpc_python_plugin")
	}
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if path, err := exec.LookPath(p); err == nil &&
			exec.Command(path, "-c", "import grpc, google.protobuf, jwt, cryptography").Run() == nil {
			return protoc, plugin, path
		}
	}
	missing("python3 with grpc, protobuf, jwt and cryptography")
	return
}

// TestPythonSubscriber runs examples/python-subscriber against
// `serve` on loopback, with Python stubs generated now from proto/ (the
// vendored google/rpc included) by Debian's protoc: a token verified with
// PyJWT from the JWKS (issuer and audience), Watch from 0 through a ban,
// a dropped stream, a resume that gets exactly the missed changes and then
// the caught-up marker (the checkpoint interval is an hour, so only the
// marker can come), and a refusal's ErrorInfo decoded from the trailer.
func TestPythonSubscriber(t *testing.T) {
	protoc, plugin, python := pythonTools(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	// A hang guard for everything Python does, not a timing.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	stubs := t.TempDir()
	protos, _ := filepath.Glob(filepath.Join(root, "proto/portcullis/v1/*.proto"))
	rpc, _ := filepath.Glob(filepath.Join(root, "proto/google/rpc/*.proto"))
	args := append([]string{"-I" + filepath.Join(root, "proto"), "--python_out=" + stubs, "--grpc_python_out=" + stubs,
		"--plugin=protoc-gen-grpc_python=" + plugin}, append(protos, rpc...)...)
	if out, err := exec.CommandContext(ctx, protoc, args...).CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, out)
	}

	data := t.TempDir()
	httpAddr := freeAddr(t)
	addr, stop := startServeConfig(t, serveConfig{dataDir: data, httpListen: httpAddr, checkpointInterval: time.Hour}, nil)
	defer stop()
	adminKey := strings.TrimSpace(string(mustRead(t, filepath.Join(data, "admin.key"))))

	cmd := exec.CommandContext(ctx, python, filepath.Join(root, "examples/python-subscriber/scenario.py"),
		addr, "http://"+httpAddr+"/.well-known/jwks.json", adminKey)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+stubs+string(os.PathListSeparator)+filepath.Join(root, "examples/python-subscriber"),
		"PYTHONDONTWRITEBYTECODE=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("scenario.py: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("scenario.py:\n%s", stdout.String())

	// Each step's line, and what it must say.
	lines := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		k, v, _ := strings.Cut(l, " ")
		lines[k] = append(lines[k], v)
	}
	field := func(v, name string) string {
		m := regexp.MustCompile(`(?:^| )` + name + `=(\S*)`).FindStringSubmatch(v)
		if m == nil {
			t.Fatalf("no %s= in %q", name, v)
		}
		return m[1]
	}
	num := func(v, name string) int64 {
		n, err := strconv.ParseInt(field(v, name), 10, 64)
		if err != nil {
			t.Fatalf("%s in %q: %v", name, v, err)
		}
		return n
	}
	one := func(k string) string {
		if len(lines[k]) != 1 {
			t.Fatalf("%d %s lines, want 1:\n%s", len(lines[k]), k, stdout.String())
		}
		return lines[k][0]
	}
	if len(lines["DONE"]) != 1 {
		t.Fatalf("scenario did not finish:\n%s", stdout.String())
	}
	tok := one("TOKEN_OK")
	if field(tok, "iss") != "portcullis" || field(tok, "aud") != "portcullis" || field(tok, "sub") != "alice" {
		t.Errorf("token claims: %s", tok)
	}
	if got := one("TOKEN_OTHER_AUDIENCE"); got != "refused" {
		t.Errorf("a token checked for another audience: %s", got)
	}

	snap := one("SNAPSHOT")
	r0 := num(snap, "rev")
	if len(lines["CAUGHT_UP"]) != 2 {
		t.Fatalf("CAUGHT_UP lines %q, want 2", lines["CAUGHT_UP"])
	}
	if c := lines["CAUGHT_UP"][0]; num(c, "rev") != r0 || num(c, "changes") != 0 {
		t.Errorf("after the snapshot at %d: CAUGHT_UP %s", r0, c)
	}
	change := one("CHANGE")
	banID := field(change, "ban_created")
	if num(change, "rev") != r0+1 {
		t.Errorf("the ban's change %s, want revision %d", change, r0+1)
	}
	dropped := one("DROPPED")
	after, missed := num(dropped, "after"), strings.Split(field(dropped, "missed"), ",")
	if after != r0+1 || len(missed) != 2 {
		t.Fatalf("DROPPED %s", dropped)
	}
	resumed := lines["RESUMED_CHANGE"]
	if len(resumed) != 2 {
		t.Fatalf("RESUMED_CHANGE %q, want exactly the 2 missed changes", resumed)
	}
	for i, l := range resumed {
		if num(l, "rev") != after+int64(i)+1 || field(l, "ban_created") != missed[i] {
			t.Errorf("resumed change %d: %s, want revision %d ban %s", i, l, after+int64(i)+1, missed[i])
		}
	}
	if c := lines["CAUGHT_UP"][1]; num(c, "rev") != after+2 || num(c, "changes") != 2 || num(c, "after") != after {
		t.Errorf("after the resume: CAUGHT_UP %s", c)
	}

	// The refusal's details, against what the authority holds.
	refused := one("REFUSED")
	if field(refused, "code") != "PERMISSION_DENIED" || field(refused, "reason") != "USER_BANNED" ||
		field(refused, "enum") != strconv.Itoa(int(pb.ErrorReason_USER_BANNED)) || field(refused, "ban_id") != banID {
		t.Errorf("REFUSED %s, want PERMISSION_DENIED USER_BANNED of %s", refused, banID)
	}
	c, err := client.Dial(addr, client.WithInsecure(), client.WithAPIKey(adminKey))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.Bans.GetBan(ctx, &pb.GetBanRequest{BanId: banID})
	if err != nil {
		t.Fatal(err)
	}
	if want := got.GetBan().GetExpireTime().AsTime().UTC().Format(time.RFC3339); field(refused, "expire_time") != want {
		t.Errorf("REFUSED expire_time %s, want the ban's %s", field(refused, "expire_time"), want)
	}
	if w := one("WRONG_KEY"); field(w, "code") != "UNAUTHENTICATED" || field(w, "reason") != "API_KEY_INVALID" || field(w, "reconnect") != "False" {
		t.Errorf("WRONG_KEY %s", w)
	}
}
