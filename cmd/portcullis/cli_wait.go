package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// maxWait is the longest --wait the authority accepts.
const maxWait = 60 * time.Second

// addWaitFlag registers --wait on a write command.
func addWaitFlag(cmd *cobra.Command, wait *string) {
	cmd.Flags().StringVar(wait, "wait", "", `wait until every mirror has applied the change, at most this long ("2s"; max 60s), and say which had not`)
}

// fitWait checks --wait and makes the call's deadline outlast it.
func (c *connFlags) fitWait(wait string) error {
	if wait == "" {
		return nil
	}
	d, err := time.ParseDuration(wait)
	if err != nil || d < 0 || d > maxWait {
		return usageError{fmt.Errorf("--wait %q: want a Go duration from 0s to 60s, e.g. 2s", wait)}
	}
	if c.timeout > 0 && c.timeout < d+5*time.Second {
		c.timeout = d + 5*time.Second
	}
	return nil
}

// enforcementLine is "enforced by 37/37 mirrors in 4 ms" ("... mirrors of
// 3 replicas ..." when the replicas share their store), or that with the
// mirrors that had not applied the change: by name for the replica that
// served the write, by count for the others.
func enforcementLine(e *pb.Enforcement) string {
	if e == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "enforced by %d/%d mirrors", e.GetConfirmed(), e.GetTotal())
	if n := len(e.GetReplicas()); n > 0 {
		fmt.Fprintf(&b, " of %d replicas", n+1)
	}
	fmt.Fprintf(&b, " in %s", fmtElapsed(e.GetElapsed().AsDuration()))
	if len(e.GetLaggards()) > 0 {
		b.WriteString("; not yet applied by: ")
		b.WriteString(subscriberNames(e.GetLaggards()))
	}
	if len(e.GetDisconnected()) > 0 {
		b.WriteString("; disconnected before applying it: ")
		b.WriteString(subscriberNames(e.GetDisconnected()))
	}
	for _, r := range e.GetReplicas() {
		switch {
		case r.GetGone():
			fmt.Fprintf(&b, "; replica %s went away at %d/%d", r.GetReplicaId(), r.GetConfirmed(), r.GetTotal())
		case r.GetConfirmed() < r.GetTotal():
			fmt.Fprintf(&b, "; replica %s: %d/%d", r.GetReplicaId(), r.GetConfirmed(), r.GetTotal())
		}
	}
	return printable(b.String()) // names of mirrors and replicas come from their peers

}

func subscriberNames(subs []*pb.Subscriber) string {
	names := make([]string, 0, len(subs))
	for _, s := range subs {
		id := s.GetIdentity()
		name := id.GetService() + "/" + id.GetInstanceId()
		if v := id.GetVersion(); v != "" {
			name += "@" + v
		}
		names = append(names, fmt.Sprintf("%s (revision %d, lag %d, %s)", name, s.GetAppliedRevision(), s.GetLag(), s.GetPeerAddress()))
	}
	return strings.Join(names, ", ")
}

func fmtElapsed(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	default:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
}
