package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// subjectFlags are --user, --ip and --device.
type subjectFlags struct{ user, ip, device string }

func (s *subjectFlags) register(cmd *cobra.Command, verb string) {
	cmd.Flags().StringVar(&s.user, "user", "", "user ID to "+verb)
	cmd.Flags().StringVar(&s.ip, "ip", "", "IP address or CIDR prefix to "+verb)
	cmd.Flags().StringVar(&s.device, "device", "", "device ID to "+verb)
}

// subject returns the one subject given.
func (s *subjectFlags) subject() (*pb.Subject, error) {
	var subj *pb.Subject
	n := 0
	if s.user != "" {
		n++
		subj = &pb.Subject{Kind: &pb.Subject_UserId{UserId: s.user}}
	}
	if s.ip != "" {
		n++
		subj = &pb.Subject{Kind: &pb.Subject_Ip{Ip: s.ip}}
	}
	if s.device != "" {
		n++
		subj = &pb.Subject{Kind: &pb.Subject_DeviceId{DeviceId: s.device}}
	}
	if n != 1 {
		return nil, usageError{fmt.Errorf("give exactly one of --user, --ip and --device")}
	}
	return subj, nil
}

func newBanCommand() *cobra.Command {
	var (
		subj         subjectFlags
		tenant       string
		duration     string
		until        string
		capabilities []string
		reason       string
		policy       string
		wait         string
	)
	cmd := &cobra.Command{
		Use:   "ban (--user U | --ip IP/CIDR | --device D) [flags]",
		Short: "Ban a user, an IP address or prefix, or a device",
		Long: `Ban a subject. A full ban (no --capability) revokes every matching live
session in the same transaction and refuses new sessions and refreshes; with
--capability it restricts only those capabilities. Without --duration or
--until the ban is permanent. Prints the ban ID and how many sessions it
revoked (-o name: the ban ID alone, for scripts).`,
		Example: `  portcullis ban --user u1 --duration 24h --reason spam
  portcullis ban --ip 203.0.113.0/24 --until 2030-01-01T00:00:00Z --policy tos-4.2
  portcullis ban --user u2 --capability post --capability comment --duration 7d`,
		Args: usageArgs(cobra.NoArgs),
	}
	cf := addConnFlags(cmd, "text", "json", "name")
	subj.register(cmd, "ban")
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", "", `tenant ("*": every tenant; default public)`)
	f.StringVar(&duration, "duration", "", `how long the ban lasts: Go duration syntax plus d for days ("90m", "24h", "7d")`)
	f.StringVar(&until, "until", "", "when the ban ends (RFC 3339, e.g. 2030-01-01T00:00:00Z)")
	f.StringArrayVar(&capabilities, "capability", nil, "restrict only this capability (repeatable); none: a full ban")
	f.StringVar(&reason, "reason", "", "why (recorded in the ban and the audit log)")
	f.StringVar(&policy, "policy", "", "the policy applied, free text (e.g. tos-4.2)")
	addWaitFlag(cmd, &wait)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		s, err := subj.subject()
		if err != nil {
			return err
		}
		if err := cf.fitWait(wait); err != nil {
			return err
		}
		req := &pb.CreateBanRequest{TenantId: tenant, Subject: s, Duration: duration,
			Capabilities: capabilities, Reason: reason, Policy: policy, Wait: wait}
		if until != "" {
			if duration != "" {
				return usageError{fmt.Errorf("give --duration or --until, not both")}
			}
			t, err := time.Parse(time.RFC3339, until)
			if err != nil {
				return usageError{fmt.Errorf("--until %q: want RFC 3339 (2030-01-01T00:00:00Z): %w", until, err)}
			}
			req.ExpireTime = timestamppb.New(t)
		}
		return cf.call(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
			resp, err := cl.Bans.CreateBan(ctx, req)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			switch cf.output {
			case "json":
				return jsonLine(w, resp)
			case "name":
				_, err = fmt.Fprintln(w, printable(resp.GetBan().GetBanId()))
				return err
			}
			b := resp.GetBan()
			_, err = fmt.Fprintf(w, "%s\nbanned %s in tenant %s %s; %s revoked\n", printable(b.GetBanId()), describeBan(b),
				printable(b.GetTenantId()), banUntil(b), plural(int(resp.GetRevokedSessions()), "session", "sessions"))
			if err == nil && resp.GetEnforcement() != nil {
				_, err = fmt.Fprintln(w, enforcementLine(resp.GetEnforcement()))
			}
			return err
		})
	}
	return cmd
}

// describeBan is "user:alice" or "user:alice (capabilities post, comment)",
// printable.
func describeBan(b *pb.Ban) string {
	s := subjectString(b.GetSubject())
	if len(b.GetCapabilities()) > 0 {
		s += " (capabilities " + strings.Join(b.GetCapabilities(), ", ") + ")"
	}
	return printable(s)
}

func banUntil(b *pb.Ban) string {
	if b.GetExpireTime() == nil {
		return "permanently"
	}
	return "until " + fmtTime(b.GetExpireTime())
}

func newUnbanCommand() *cobra.Command {
	var reason, wait string
	cmd := &cobra.Command{
		Use:   "unban BAN_ID",
		Short: "Lift a ban (its record stays, with who lifted it and why)",
		Args:  usageArgs(cobra.ExactArgs(1)),
	}
	cf := addConnFlags(cmd, "text", "json")
	cmd.Flags().StringVar(&reason, "reason", "", "why the ban is lifted")
	addWaitFlag(cmd, &wait)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := cf.fitWait(wait); err != nil {
			return err
		}
		return cf.call(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
			resp, err := cl.Bans.LiftBan(ctx, &pb.LiftBanRequest{BanId: args[0], Reason: reason, Wait: wait})
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return jsonLine(cmd.OutOrStdout(), resp)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "lifted ban %s on %s\n", printable(resp.GetBan().GetBanId()), describeBan(resp.GetBan()))
			if err == nil && resp.GetEnforcement() != nil {
				_, err = fmt.Fprintln(cmd.OutOrStdout(), enforcementLine(resp.GetEnforcement()))
			}
			return err
		})
	}
	return cmd
}

var banKinds = map[string]pb.SubjectKind{
	"": pb.SubjectKind_SUBJECT_KIND_UNSPECIFIED, "user": pb.SubjectKind_SUBJECT_KIND_USER,
	"ip": pb.SubjectKind_SUBJECT_KIND_IP, "device": pb.SubjectKind_SUBJECT_KIND_DEVICE,
}

var banStates = map[string]pb.BanState{
	"all": pb.BanState_BAN_STATE_UNSPECIFIED, "active": pb.BanState_BAN_STATE_ACTIVE,
	"expired": pb.BanState_BAN_STATE_EXPIRED, "lifted": pb.BanState_BAN_STATE_LIFTED,
}

func newBansCommand() *cobra.Command {
	var tenant, kind, state string
	var limit int
	cmd := &cobra.Command{
		Use:   "bans",
		Short: "List bans (a table; -o json for JSON lines)",
		Args:  usageArgs(cobra.NoArgs),
	}
	cf := addConnFlags(cmd, "table", "json")
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", "", "only this tenant (default: every tenant)")
	f.StringVar(&kind, "kind", "", "only this subject kind: user, ip or device")
	f.StringVar(&state, "state", "active", "only bans in this state: active, expired, lifted or all")
	f.IntVar(&limit, "limit", 0, "at most this many bans (0: all)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		k, ok := banKinds[kind]
		if !ok {
			return usageError{fmt.Errorf("--kind %q: want user, ip or device", kind)}
		}
		st, ok := banStates[state]
		if !ok {
			return usageError{fmt.Errorf("--state %q: want active, expired, lifted or all", state)}
		}
		return cf.call(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
			req := &pb.ListBansRequest{TenantId: tenant, SubjectKind: k, State: st}
			return listing[*pb.Ban]{
				output: cf.output, limit: limit,
				header: []string{"BAN_ID", "TENANT", "SUBJECT", "CAPABILITIES", "STATE", "CREATED", "EXPIRES", "BY", "REASON", "POLICY"},
				fetch: func(token string) ([]*pb.Ban, string, error) {
					req.PageToken = token
					resp, err := cl.Bans.ListBans(ctx, req)
					return resp.GetBans(), resp.GetNextPageToken(), err
				},
				row: func(b *pb.Ban) []string {
					exp := fmtTime(b.GetExpireTime())
					if exp == "" {
						exp = "never"
					}
					return []string{b.GetBanId(), b.GetTenantId(), subjectString(b.GetSubject()), strings.Join(b.GetCapabilities(), ","),
						banState(b.GetState()), fmtTime(b.GetCreateTime()), exp, b.GetCreatedBy(), b.GetReason(), b.GetPolicy()}
				},
			}.print(cmd.OutOrStdout())
		})
	}
	return cmd
}

func newCheckCommand() *cobra.Command {
	var tenant, user, ip, device, capability string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Ask whether a user, IP or device is banned (as CreateSession would)",
		Long: `Ask the authority whether any active ban applies to the given user, IP
address and device in the tenant (or in every tenant, "*"), optionally for
one capability. Prints "banned" with the bans that apply, or "not banned".`,
		Example: `  portcullis check --user alice --ip 203.0.113.7`,
		Args:    usageArgs(cobra.NoArgs),
	}
	cf := addConnFlags(cmd, "text", "json")
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", "", "tenant (default public)")
	f.StringVar(&user, "user", "", "user ID")
	f.StringVar(&ip, "ip", "", "IP address")
	f.StringVar(&device, "device", "", "device ID")
	f.StringVar(&capability, "capability", "", "capability to check (default: a full ban only)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if user == "" && ip == "" && device == "" {
			return usageError{fmt.Errorf("give at least one of --user, --ip and --device")}
		}
		return cf.call(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
			resp, err := cl.Bans.CheckBan(ctx, &pb.CheckBanRequest{TenantId: tenant, UserId: user, Ip: ip, DeviceId: device, Capability: capability})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if cf.output == "json" {
				return jsonLine(w, resp)
			}
			if !resp.GetBanned() {
				_, err := fmt.Fprintln(w, "not banned")
				return err
			}
			fmt.Fprintln(w, "banned")
			for _, b := range resp.GetBans() {
				fmt.Fprintf(w, "  %s %s in tenant %s %s: %s\n", printable(b.GetBanId()), describeBan(b), printable(b.GetTenantId()), banUntil(b), printable(b.GetReason()))
			}
			return nil
		})
	}
	return cmd
}
