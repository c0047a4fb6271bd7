package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd/etcdtest"
	"github.com/portcullis-dev/portcullis/rpcerr"
)

// runCLI runs the binary's command line in-process, without the caller's
// PORTCULLIS_* variables.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runWith(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func clearPortcullisEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "PORTCULLIS_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
}

// adminClient dials addr with key.
func adminClient(t *testing.T, addr, key string) *client.Client {
	t.Helper()
	cl, err := client.Dial(addr, client.WithInsecure(), client.WithAPIKey(key))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// TestRecoverAdminBolt: an operator who lost the admin key of a bbolt
// authority recovers one offline. recover-admin refuses the file while
// the authority runs, writes a new admin key once it is stopped, and the
// restarted authority accepts it: the lost key can then be revoked, and
// the recovery is in the audit log.
func TestRecoverAdminBolt(t *testing.T) {
	clearPortcullisEnv(t)
	data := filepath.Join(t.TempDir(), "data")
	keyFile := filepath.Join(data, "admin.key")
	addr, stop := startServe(t, data)
	lost := strings.TrimSpace(string(mustRead(t, keyFile)))

	// Running: the file lock refuses it, and nothing is touched.
	code, _, errs := runCLI(t, "recover-admin", "--data", data)
	if code != exitError || !strings.Contains(errs, "is locked by another process, most likely a running authority") {
		t.Fatalf("recover-admin on a running authority: exit %d, stderr %q", code, errs)
	}
	if got := strings.TrimSpace(string(mustRead(t, keyFile))); got != lost {
		t.Fatal("a refused recover-admin changed admin.key")
	}
	keys, err := adminClient(t, addr, lost).APIKeys.ListAPIKeys(context.Background(), &pb.ListAPIKeysRequest{})
	if err != nil || len(keys.GetApiKeys()) != 1 {
		t.Fatalf("API keys after a refused recovery: %v, %v", keys.GetApiKeys(), err)
	}
	lostID := keys.GetApiKeys()[0].GetApiKeyId()
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// The secret is lost.
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "recover-admin", "--data", data, "--reason", "lost the bootstrap key")
	if code != exitOK {
		t.Fatalf("recover-admin: exit %d, stderr %q", code, errs)
	}
	if !strings.Contains(out, "created API key recovered-admin-") || !strings.Contains(out, "secret written to "+keyFile) || strings.Contains(out, "pcl_") {
		t.Fatalf("recover-admin printed %q", out)
	}
	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.key after recovery: %v, %v; want mode 0600", fi, err)
	}
	recovered := strings.TrimSpace(string(mustRead(t, keyFile)))
	if !strings.HasPrefix(recovered, "pcl_") || recovered == lost {
		t.Fatalf("admin.key holds %q after recovery", recovered)
	}
	if left, _ := filepath.Glob(filepath.Join(data, ".admin.key-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	if err := bolt.Check(filepath.Join(data, "portcullis.db")); err != nil {
		t.Fatal(err)
	}

	// Restarted, the authority accepts the new key (and, its store not
	// being empty, writes no bootstrap key over it).
	addr, stop = startServeAt(t, data, "127.0.0.1:0")
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	if got := strings.TrimSpace(string(mustRead(t, keyFile))); got != recovered {
		t.Fatal("the restarted authority replaced the recovered admin.key")
	}
	// The CLI uses <data>/admin.key: revoke the lost key with it, now
	// that it is not the last admin key.
	if code, out, errs := runCLI(t, "apikeys", "revoke", lostID, "--addr", addr, "--data", data); code != exitOK || !strings.Contains(out, "revoked API key bootstrap-admin") {
		t.Fatalf("apikeys revoke of the lost key: exit %d, %q, %q", code, out, errs)
	}
	if _, err := adminClient(t, addr, lost).APIKeys.ListAPIKeys(context.Background(), &pb.ListAPIKeysRequest{}); err == nil {
		t.Fatal("the lost key still works after its revocation")
	}
	recs, err := adminClient(t, addr, recovered).Audit.ListAuditRecords(context.Background(), &pb.ListAuditRecordsRequest{Action: "apikey.recover"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs.GetRecords()) != 1 {
		t.Fatalf("%d apikey.recover audit records, want 1", len(recs.GetRecords()))
	}
	r := recs.GetRecords()[0]
	if r.GetActor() != "offline-recovery" || r.GetActorAddress() != "local" || r.GetReason() != "lost the bootstrap key" ||
		r.GetDetails()["scopes"] != "admin" || !strings.HasPrefix(recovered, "pcl_"+r.GetTargetId()+"_") {
		t.Fatalf("audit record of the recovery: %v", r)
	}
	// The recovered key is now the last admin key: it may not revoke
	// itself either.
	code, _, errs = runCLI(t, "apikeys", "revoke", r.GetTargetId(), "--addr", addr, "--data", data)
	if code != exitError || !strings.HasPrefix(errs, "portcullis: FailedPrecondition LAST_ADMIN_KEY: ") {
		t.Fatalf("revoking the last admin key: exit %d, stderr %q", code, errs)
	}
	_, err = adminClient(t, addr, recovered).APIKeys.RevokeAPIKey(context.Background(), &pb.RevokeAPIKeyRequest{ApiKeyId: r.GetTargetId()})
	if !errors.Is(err, rpcerr.ErrLastAdminKey) {
		t.Fatalf("revoking the last admin key with the client: %v, want rpcerr.ErrLastAdminKey", err)
	}
}

// TestRecoverAdminEtcd: the same over etcd, printing the secret on stdout.
func TestRecoverAdminEtcd(t *testing.T) {
	clearPortcullisEnv(t)
	m := etcdtest.Start(t, etcdtest.Config{UnsafeNoFsync: true})
	store := storeConfig{url: "etcd://" + m.Endpoint(), prefix: etcdtest.NewPrefix()}
	data := filepath.Join(t.TempDir(), "data")
	_, stop := startServeConfig(t, serveConfig{dataDir: data, store: store}, nil)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// Another machine: no data directory of the authority's.
	elsewhere := filepath.Join(t.TempDir(), "elsewhere")
	code, out, errs := runCLI(t, "recover-admin", "--store", store.url, "--etcd-prefix", store.prefix, "--data", elsewhere,
		"--key-file", "-", "--name", "break-glass")
	if code != exitOK {
		t.Fatalf("recover-admin: exit %d, stderr %q", code, errs)
	}
	secret := strings.TrimSpace(out)
	if !strings.HasPrefix(secret, "pcl_") || strings.Count(out, "\n") != 1 {
		t.Fatalf("recover-admin --key-file - printed %q, want the secret alone", out)
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "admin.key")); !os.IsNotExist(err) {
		t.Fatalf("--key-file - wrote admin.key (%v)", err)
	}

	addr, stop := startServeConfig(t, serveConfig{dataDir: data, store: store}, nil)
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	keys, err := adminClient(t, addr, secret).APIKeys.ListAPIKeys(context.Background(), &pb.ListAPIKeysRequest{})
	if err != nil {
		t.Fatalf("the recovered key: %v", err)
	}
	var names []string
	for _, k := range keys.GetApiKeys() {
		names = append(names, k.GetName())
	}
	if strings.Join(names, ",") != "bootstrap-admin,break-glass" {
		t.Fatalf("API keys %v", names)
	}
	// A second recovery with the same name is refused: names of
	// unrevoked keys are unique.
	code, _, errs = runCLI(t, "recover-admin", "--store", store.url, "--etcd-prefix", store.prefix, "--data", elsewhere,
		"--key-file", "-", "--name", "break-glass")
	if code != exitError || !strings.Contains(errs, `an API key named "break-glass" exists`) {
		t.Fatalf("a second recovery named break-glass: exit %d, stderr %q", code, errs)
	}
}

// TestRecoverAdminRefusals: recover-admin creates no store, writes into
// none that no authority ever started, and checks its flags as serve does.
func TestRecoverAdminRefusals(t *testing.T) {
	clearPortcullisEnv(t)
	dir := t.TempDir()

	missing := filepath.Join(dir, "typo")
	code, _, errs := runCLI(t, "recover-admin", "--data", missing)
	if code != exitError || !strings.Contains(errs, "no store at "+filepath.Join(missing, "portcullis.db")) {
		t.Fatalf("recover-admin on a missing store: exit %d, stderr %q", code, errs)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("recover-admin on a missing store created %s (%v)", missing, err)
	}

	// A bbolt file no authority ever started: no API key in it.
	fresh := filepath.Join(dir, "fresh")
	if err := os.Mkdir(fresh, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := bolt.Open(filepath.Join(fresh, "portcullis.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCLI(t, "recover-admin", "--data", fresh)
	if code != exitError || !strings.Contains(errs, "the store holds no API key") {
		t.Fatalf("recover-admin on a never-started store: exit %d, stderr %q", code, errs)
	}
	s, err = bolt.Open(filepath.Join(fresh, "portcullis.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.View(context.Background(), func(tx storage.ReadTx) error {
		for k, err := range tx.APIKeys() {
			if err != nil {
				return err
			}
			t.Errorf("the refused recovery wrote API key %s", k.Name)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(fresh); len(entries) != 1 {
		t.Fatalf("files in the data directory after a refused recovery: %v", entries)
	}

	code, _, errs = runCLI(t, "recover-admin", "--data", fresh, "--etcd-user", "root")
	if code != exitUsage || !strings.Contains(errs, "need --store etcd://") {
		t.Fatalf("recover-admin with an etcd flag and no etcd: exit %d, stderr %q", code, errs)
	}
	code, _, errs = runCLI(t, "recover-admin", "extra")
	if code != exitUsage {
		t.Fatalf("recover-admin with an argument: exit %d, stderr %q", code, errs)
	}
}

// TestRecoverAdminProcesses: the built binary, as an operator runs it.
// `portcullis serve` in its own process holds the bbolt file, and a
// `portcullis recover-admin` process is refused; once serve has stopped on
// SIGTERM, recover-admin writes the key, and `portcullis apikeys list`
// against the restarted authority works with it (from <data>/admin.key).
func TestRecoverAdminProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "portcullis")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	work := t.TempDir()
	env := cleanEnv()
	portcullis := func(args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = work, env
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("portcullis %v: %v", args, err)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}
	addr := freeAddr(t)
	serve := func() (stop func()) {
		t.Helper()
		cmd := exec.Command(bin, "serve", "--data", "data", "--listen", addr, "--http-listen", "")
		cmd.Dir, cmd.Env = work, env
		logs, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		serving := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(logs)
			for sc.Scan() {
				if strings.Contains(sc.Text(), `"msg":"portcullis serving"`) {
					close(serving)
					break
				}
			}
			io.Copy(io.Discard, logs)
		}()
		select {
		case <-serving:
		case <-time.After(time.Minute): // hang guard
			cmd.Process.Kill()
			t.Fatal("serve did not start")
		}
		return func() {
			t.Helper()
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("serve after SIGTERM: %v", err)
			}
		}
	}

	stop := serve()
	lost := mustRead(t, filepath.Join(work, "data", "admin.key"))
	if code, out := portcullis("recover-admin"); code != exitError || !strings.Contains(out, "locked by another process") {
		t.Fatalf("recover-admin while serve runs: exit %d, %q", code, out)
	}
	stop()
	code, out := portcullis("recover-admin", "--reason", "drill")
	if code != exitOK || !strings.Contains(out, "secret written to data/admin.key") {
		t.Fatalf("recover-admin: exit %d, %q", code, out)
	}
	if bytes.Equal(mustRead(t, filepath.Join(work, "data", "admin.key")), lost) {
		t.Fatal("admin.key did not change")
	}
	stop = serve()
	defer stop()
	code, out = portcullis("apikeys", "list", "--addr", addr)
	if code != exitOK || !strings.Contains(out, "recovered-admin-") || !strings.Contains(out, "bootstrap-admin") {
		t.Fatalf("apikeys list with the recovered key: exit %d, %q", code, out)
	}
}
