package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

func newWatchCommand() *cobra.Command {
	var after int64
	var checkpoints bool
	var maxBackoff time.Duration
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Follow the event stream: bans, lifts, revocations, key changes",
		Long: `Follow EventService.Watch: one line per event, or with -o json one JSON
object per WatchResponse (JSON lines, for piping into other systems). With
--after-revision 0 (the default) the stream starts with a snapshot of the
current state: one summary line, or with -o json one object per part of the
snapshot (a large one comes in parts of about 1 MiB; all but the last have
"more": true). After a disconnect, watch reconnects with backoff and resumes
after the last revision it printed, on the same store: no event is printed
twice and none is skipped (a snapshot cut off midway is sent again, whole).
Once a resumed stream has delivered what was missed, watch says so on
stderr ("caught up at revision N"), from the authority's caught-up
checkpoint. It runs until interrupted.`,
		Example: `  portcullis watch
  portcullis watch -o json --after-revision 1200 | your-siem-forwarder`,
		Args: usageArgs(cobra.NoArgs),
	}
	cf := addConnFlags(cmd, "text", "json")
	f := cmd.Flags()
	f.Int64Var(&after, "after-revision", 0, "start after this revision (0: a snapshot first)")
	f.BoolVar(&checkpoints, "checkpoints", false, "also print checkpoints (text output; JSON output always has them)")
	f.DurationVar(&maxBackoff, "max-backoff", 10*time.Second, "longest wait between reconnection attempts")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cl, err := cf.dial()
		if err != nil {
			return err
		}
		defer cl.Close()
		w := &watcher{out: cmd.OutOrStdout(), errOut: cmd.ErrOrStderr(), json: cf.output == "json",
			checkpoints: checkpoints, revision: after, maxBackoff: maxBackoff}
		return w.run(cmd.Context(), cl)
	}
	return cmd
}

// watcher follows the stream across reconnections.
type watcher struct {
	out, errOut io.Writer
	json        bool
	checkpoints bool
	maxBackoff  time.Duration

	revision int64  // last revision printed
	storeID  string // store of that revision

	snap snapTally // the snapshot being received, printed at its last part

	// The current stream, when it resumed after resumedAfter (> 0): until
	// its first checkpoint (the authority's caught-up marker), missed
	// counts the changes it delivered.
	resumedAfter int64
	caughtUp     bool
	missed       int
}

// snapTally counts what the parts of a snapshot received so far hold.
type snapTally struct{ parts, bans, revoked, keys int }

// fatal reports whether err means retrying cannot help.
func fatal(err error) bool {
	var e *client.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case codes.Unauthenticated, codes.PermissionDenied, codes.InvalidArgument, codes.Unimplemented:
		return true
	}
	return false
}

func (w *watcher) run(ctx context.Context, cl *client.Client) error {
	const minBackoff = 250 * time.Millisecond
	backoff := minBackoff
	for {
		progressed, err := w.follow(ctx, cl)
		if ctx.Err() != nil {
			return nil // interrupted: a normal end
		}
		if fatal(err) {
			return err
		}
		if progressed {
			backoff = minBackoff
		}
		fmt.Fprintf(w.errOut, "portcullis: watch: %s; resuming after revision %d in %s\n", errorLine(err), w.revision, backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(backoff*2, w.maxBackoff)
	}
}

// follow opens one stream and prints it until it ends. progressed is true
// when at least one message arrived.
func (w *watcher) follow(ctx context.Context, cl *client.Client) (progressed bool, err error) {
	stream, err := cl.Events.Watch(ctx, &pb.WatchRequest{AfterRevision: w.revision, StoreId: w.storeID})
	if err != nil {
		return false, err
	}
	w.startStream()
	for {
		resp, err := stream.Recv()
		if err != nil {
			if err == io.EOF {
				err = errors.New("the stream ended")
			}
			return progressed, err
		}
		progressed = true
		if err := w.handle(resp); err != nil {
			return progressed, err
		}
	}
}

// startStream resets what belongs to one stream.
func (w *watcher) startStream() {
	w.snap = snapTally{} // a snapshot cut off midway starts over
	w.resumedAfter, w.caughtUp, w.missed = w.revision, false, 0
}

// handle prints one message and, once the revision is complete (for a
// snapshot, at its last part), moves the position watch resumes from.
func (w *watcher) handle(resp *pb.WatchResponse) error {
	if err := w.print(resp); err != nil {
		return err
	}
	if !resp.GetSnapshot().GetMore() {
		w.revision, w.storeID = resp.GetRevision(), resp.GetStoreId()
	}
	switch {
	case w.caughtUp:
	case resp.GetChange() != nil:
		w.missed++
	case resp.GetCheckpoint() != nil:
		// A stream's first checkpoint comes as soon as it has delivered
		// everything up to the store's revision at its start.
		w.caughtUp = true
		if w.resumedAfter > 0 {
			fmt.Fprintf(w.errOut, "portcullis: watch: caught up at revision %d (%s since revision %d)\n",
				w.revision, plural(w.missed, "change", "changes"), w.resumedAfter)
		}
	}
	return nil
}

func (w *watcher) print(resp *pb.WatchResponse) error {
	if w.json {
		return jsonLine(w.out, resp)
	}
	rev := resp.GetRevision()
	switch p := resp.GetPayload().(type) {
	case *pb.WatchResponse_Snapshot:
		s, t := p.Snapshot, &w.snap
		t.parts++
		t.bans += len(s.GetBans())
		t.revoked += len(s.GetRevokedSessions())
		t.keys += len(s.GetKeys())
		if s.GetMore() {
			return nil
		}
		var parts string
		if t.parts > 1 {
			parts = fmt.Sprintf(" (in %d parts)", t.parts)
		}
		_, err := fmt.Fprintf(w.out, "%s rev=%d snapshot store=%s: %s, %s, %s%s\n", fmtTime(resp.GetServerTime()), rev, printable(resp.GetStoreId()),
			plural(t.bans, "active ban", "active bans"),
			plural(t.revoked, "revoked session", "revoked sessions"),
			plural(t.keys, "key", "keys"), parts)
		*t = snapTally{}
		return err
	case *pb.WatchResponse_Checkpoint:
		if !w.checkpoints {
			return nil
		}
		_, err := fmt.Fprintf(w.out, "%s rev=%d checkpoint\n", fmtTime(resp.GetServerTime()), rev)
		return err
	case *pb.WatchResponse_Change:
		for _, e := range p.Change.GetEvents() {
			if _, err := fmt.Fprintf(w.out, "%s rev=%d %s\n", fmtTime(e.GetTime()), rev, eventLine(e)); err != nil {
				return err
			}
		}
	}
	return nil
}

// eventLine renders one event: its kind, then key=value fields.
func eventLine(e *pb.Event) string {
	kv := func(kind string, fields ...string) string {
		var b strings.Builder
		b.WriteString(kind)
		for i := 0; i+1 < len(fields); i += 2 {
			if fields[i+1] == "" {
				continue
			}
			// Escaped, then quoted when it holds a separator of the
			// line's own syntax.
			v := printable(fields[i+1])
			if strings.ContainsAny(v, " \"=") {
				v = `"` + strings.ReplaceAll(v, `"`, `\"`) + `"`
			}
			fmt.Fprintf(&b, " %s=%s", fields[i], v)
		}
		return b.String()
	}
	ban := func(kind string, b *pb.Ban, extra ...string) string {
		exp := fmtTime(b.GetExpireTime())
		if exp == "" {
			exp = "never"
		}
		return kv(kind, append([]string{"ban_id", b.GetBanId(), "tenant", b.GetTenantId(), "subject", subjectString(b.GetSubject()),
			"capabilities", strings.Join(b.GetCapabilities(), ","), "expires", exp}, extra...)...)
	}
	switch k := e.GetKind().(type) {
	case *pb.Event_BanCreated:
		return ban("ban_created", k.BanCreated, "by", k.BanCreated.GetCreatedBy(), "reason", k.BanCreated.GetReason(), "policy", k.BanCreated.GetPolicy())
	case *pb.Event_BanLifted:
		return ban("ban_lifted", k.BanLifted, "by", k.BanLifted.GetLiftedBy(), "reason", k.BanLifted.GetLiftReason())
	case *pb.Event_SessionRevoked:
		s := k.SessionRevoked
		return kv("session_revoked", "session_id", s.GetSessionId(), "tenant", s.GetTenantId(), "user", s.GetUserId(), "reason", s.GetReason())
	case *pb.Event_KeyAdded:
		return kv("key_added", "key_id", k.KeyAdded.GetKeyId(), "algorithm", k.KeyAdded.GetAlgorithm())
	case *pb.Event_KeyRetired:
		return kv("key_retired", "key_id", k.KeyRetired.GetKeyId(), "verify_until", fmtTime(k.KeyRetired.GetVerifyUntil()))
	}
	return "unknown_event"
}
