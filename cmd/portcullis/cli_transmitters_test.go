package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/receiver/txfake"
)

// TestCLITransmitters: transmitters add creates a stream at a (fake)
// transmitter and shows its keys (adopting the stream's aud when not
// given), refuses push when serve has no public URL, list and show print it without its bearer token, rm removes it
// and deletes the stream at the transmitter.
func TestCLITransmitters(t *testing.T) {
	e := newCLIEnv(t)
	tx := txfake.Start(t)
	tokenFile := filepath.Join(t.TempDir(), "tx.token")
	if err := os.WriteFile(tokenFile, []byte(txfake.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := e.run("transmitters", "add", tx.URL, "--audience", "me", "--tenant", "acme", "--bearer-token-file", tokenFile)
	if code != exitError || !strings.HasPrefix(errs, "portcullis: InvalidArgument INVALID_ARGUMENT: ") || !strings.Contains(errs, "public") {
		t.Fatalf("push without --public-url: %d %q", code, errs)
	}
	// Without --audience: the aud the transmitter set for the stream.
	out := e.ok("transmitters", "add", tx.URL, "--tenant", "acme", "--delivery", "poll",
		"--bearer-token-file", tokenFile, "--ban-duration", "2h")
	if !strings.HasPrefix(out, "added transmitter stx_") || !strings.Contains(out, "issuer "+tx.URL) || !strings.Contains(out, "keys k1") {
		t.Fatalf("transmitters add: %q", out)
	}
	id := strings.Fields(out)[2]
	stream := tx.Stream()
	if stream == nil || !strings.Contains(out, "stream "+stream.StreamID) {
		t.Fatalf("stream at the transmitter: %+v, add said %q", stream, out)
	}
	list := e.ok("transmitters", "list")
	if !strings.Contains(list, id) || !strings.Contains(list, "poll") || !strings.Contains(list, "LAST_SUCCESS") {
		t.Fatalf("transmitters list: %q", list)
	}
	show := e.ok("transmitters", "show", id)
	if !strings.Contains(show, "ban_duration: 2h0m0s") || !strings.Contains(show, "audience:     aud-"+stream.StreamID) || !strings.Contains(show, "poll_url:     "+tx.URL+"/poll") {
		t.Fatalf("transmitters show: %q", show)
	}
	if js := e.ok("transmitters", "list", "-o", "json"); strings.Contains(js, txfake.Token) || strings.Contains(list+show, txfake.Token) {
		t.Fatalf("the bearer token is shown: %q", js)
	}
	if out := e.ok("transmitters", "rm", id); out != "removed transmitter "+id+"\n" {
		t.Fatalf("transmitters rm: %q", out)
	}
	if d := tx.Deleted(); len(d) != 1 || d[0] != stream.StreamID {
		t.Fatalf("streams deleted at the transmitter: %v", d)
	}
	if list := e.ok("transmitters", "list", "-o", "json"); strings.TrimSpace(list) != "" {
		t.Fatalf("transmitters list after rm: %q", list)
	}
	if code, _, errs := e.run("transmitters", "show", id); code != exitError || !strings.Contains(errs, "NOT_FOUND") {
		t.Fatalf("show after rm: %d %q", code, errs)
	}
}
