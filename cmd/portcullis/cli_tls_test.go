package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLICAFile: with --ca-file the CLI speaks TLS to the authority and
// verifies it with that CA, on loopback too; a CA that did not sign the
// certificate fails the call (exit 1), a file without a certificate is a
// usage error (exit 2).
func TestCLICAFile(t *testing.T) {
	ca := newTestCA(t, "ca-cli")
	e := startTLS(t, ca, nil)
	dir := t.TempDir()
	good, other, junk := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "other.pem"), filepath.Join(dir, "junk.pem")
	writeFile(t, good, ca.pem)
	writeFile(t, other, newTestCA(t, "ca-other").pem)
	writeFile(t, junk, []byte("not a certificate"))
	run := func(caFile string) (int, string) {
		var out, errb bytes.Buffer
		code := runWith(context.Background(), []string{"bans", "--addr", e.addr, "--api-key", e.adminKey, "--ca-file", caFile, "--timeout", "5s"}, &out, &errb)
		return code, errb.String()
	}
	if code, errs := run(good); code != exitOK {
		t.Fatalf("--ca-file with the signing CA: exit %d, %s", code, errs)
	}
	if code, errs := run(other); code != exitError || !strings.Contains(errs, "Unavailable") {
		t.Fatalf("--ca-file with another CA: exit %d, %q; want 1 and Unavailable", code, errs)
	}
	if code, errs := run(junk); code != exitUsage || !strings.Contains(errs, "no PEM certificate") {
		t.Fatalf("--ca-file without a certificate: exit %d, %q; want 2", code, errs)
	}
}
