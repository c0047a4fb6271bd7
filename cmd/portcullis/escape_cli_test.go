package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
)

// TestOutputEscapesStoredControls: a ban, its event, its audit record and
// a revoked session stored with control characters and bidi controls in
// their text (as an authority before the refusal, or another tool, could
// have written them; the authority now refuses them) reach the terminal
// escaped in bans, audit, sessions, check and watch: "\r\x1b[2K" would
// otherwise erase the row, "\n" forge one, and U+202E reverse the text.
func TestOutputEscapesStoredControls(t *testing.T) {
	for _, v := range []string{"PORTCULLIS_ADDR", "PORTCULLIS_API_KEY", "PORTCULLIS_DATA", "PORTCULLIS_INSECURE", "PORTCULLIS_CA_FILE", "PORTCULLIS_TIMEOUT"} {
		t.Setenv(v, "") // restored after the test
		os.Unsetenv(v)
	}
	data := filepath.Join(t.TempDir(), "data")
	_, stop := startServe(t, data) // bootstraps the store and the admin key
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	const (
		reason  = "spam\r\x1b[2K"
		policy  = "\u202eyciloP"
		revoke  = "lost\nban_fake  public  user:bob  lifted"
		user    = "eve\x1b[8m"
		escUser = `eve\x1b[8m`
	)
	st, err := bolt.Open(filepath.Join(data, "portcullis.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	ban := storage.Ban{ID: "ban_0stored", TenantID: "public", Kind: storage.SubjectUser, Value: user,
		Reason: reason, Policy: policy, CreatedBy: "old-tool", CreateTime: now}
	// The authority now refuses user IDs like user, also as a filter: the
	// session and a second ban are on eve, so that sessions and check can
	// ask for them.
	ban2 := storage.Ban{ID: "ban_1stored", TenantID: "public", Kind: storage.SubjectUser, Value: "eve",
		Reason: reason, CreatedBy: "old-tool", CreateTime: now}
	ses := storage.Session{ID: "ses_0stored", TenantID: "public", UserID: "eve", CreateTime: now, RefreshTime: now,
		ExpireTime: now.Add(time.Hour), AccessExpireTime: now.Add(time.Minute), RevokeTime: now, RevokedBy: "old-tool", RevokeReason: revoke}
	var before int64
	if err := st.View(context.Background(), func(tx storage.ReadTx) error {
		before = tx.Revision()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_, err = st.Update(context.Background(), func(tx storage.Tx) error {
		if err := tx.PutBan(ban); err != nil {
			return err
		}
		if err := tx.Emit(storage.Event{Kind: storage.EventBanCreated, Time: now, Ban: &ban}); err != nil {
			return err
		}
		if err := tx.PutBan(ban2); err != nil {
			return err
		}
		if err := tx.PutSession(ses); err != nil {
			return err
		}
		if err := tx.Emit(storage.Event{Kind: storage.EventSessionRevoked, Time: now, Session: &ses}); err != nil {
			return err
		}
		return tx.AppendAudit(storage.AuditRecord{ID: "aud_0stored", Time: now, Action: "ban.create", Actor: "old-tool",
			TenantID: "public", Subject: "user:" + user, TargetID: ban.ID, Reason: reason, Policy: policy})
	})
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	addr, stop := startServe(t, data)
	t.Cleanup(func() { stop() })
	e := &cliEnv{t: t, addr: addr, data: data}

	raw := func(what, out string) {
		t.Helper()
		if i := strings.IndexFunc(out, func(r rune) bool { return (r < 0x20 && r != '\n') || r == 0x7f || r == 0x202e }); i >= 0 {
			t.Fatalf("%s printed a raw control character at %d: %q", what, i, out)
		}
	}
	lines := func(what, out string, n int) {
		t.Helper()
		if got := strings.Count(out, "\n"); got != n {
			t.Fatalf("%s printed %d lines, want %d (a newline in a record forged a row?):\n%s", what, got, n, out)
		}
	}
	out := e.ok("bans")
	raw("bans", out)
	lines("bans", out, 3)
	for _, want := range []string{`spam\r\x1b[2K`, `\u202eyciloP`, "user:" + escUser} {
		if !strings.Contains(out, want) {
			t.Fatalf("bans: no %s in\n%s", want, out)
		}
	}

	out = e.ok("audit", "--action", "ban.create")
	raw("audit", out)
	if !strings.Contains(out, `spam\r\x1b[2K`) || !strings.Contains(out, `\u202eyciloP`) {
		t.Fatalf("audit: reason or policy not escaped:\n%s", out)
	}

	out = e.ok("sessions", "--user", "eve", "--all")
	raw("sessions", out)
	lines("sessions", out, 2)
	if !strings.Contains(out, `lost\nban_fake`) {
		t.Fatalf("sessions: revoke reason not escaped:\n%s", out)
	}

	out = e.ok("check", "--user", "eve")
	raw("check", out)
	if !strings.Contains(out, `spam\r\x1b[2K`) {
		t.Fatalf("check: reason not escaped:\n%s", out)
	}

	// watch (writing to log_test.go's syncBuffer) from before the write: the ban_created and session_revoked
	// events, then interrupted.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wout, werr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runWith(ctx, []string{"watch", "--after-revision", strconv.FormatInt(before, 10), "--addr", addr, "--data", data}, &wout, &werr)
	}()
	guard := time.After(time.Minute)
	for !strings.Contains(wout.String(), "session_revoked") {
		select {
		case <-guard:
			t.Fatalf("watch printed no session_revoked in a minute: %q, stderr %q", wout.String(), werr.String())
		case code := <-done:
			t.Fatalf("watch ended (%d): %q, stderr %q", code, wout.String(), werr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	<-done
	out = wout.String()
	raw("watch", out)
	lines("watch", out, 2)
	for _, want := range []string{`reason=spam\r\x1b[2K`, `policy=\u202eyciloP`, `reason="lost\nban_fake  public  user:bob  lifted"`, "subject=user:" + escUser} {
		if !strings.Contains(out, want) {
			t.Fatalf("watch: no %s in\n%s", want, out)
		}
	}
}
