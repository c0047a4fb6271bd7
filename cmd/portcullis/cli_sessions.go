package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

func newSessionsCommand() *cobra.Command {
	var tenant, user, device string
	var all bool
	cmd := &cobra.Command{
		Use:     "sessions --user U",
		Short:   "List a user's sessions (a table; -o json for JSON lines)",
		Example: `  portcullis sessions --user alice --all`,
		Args:    usageArgs(cobra.NoArgs),
	}
	cf := addConnFlags(cmd, "table", "json")
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", "public", "tenant")
	f.StringVar(&user, "user", "", "user ID")
	f.StringVar(&device, "device", "", "only sessions created with this device")
	f.BoolVar(&all, "all", false, "include revoked and expired sessions")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if user == "" && device == "" {
			return usageError{fmt.Errorf("give --user (or --device)")}
		}
		return cf.call(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
			req := &pb.ListSessionsRequest{TenantId: tenant, UserId: user, DeviceId: device, IncludeInactive: all}
			return listing[*pb.Session]{
				output: cf.output,
				header: []string{"SESSION_ID", "TENANT", "USER", "DEVICE", "CLIENT_IP", "CREATED", "EXPIRES", "REVOKED", "REVOKE_REASON"},
				fetch: func(token string) ([]*pb.Session, string, error) {
					req.PageToken = token
					resp, err := cl.Sessions.ListSessions(ctx, req)
					return resp.GetSessions(), resp.GetNextPageToken(), err
				},
				row: func(s *pb.Session) []string {
					return []string{s.GetSessionId(), s.GetTenantId(), s.GetUserId(), s.GetDeviceId(), s.GetClientIp(),
						fmtTime(s.GetCreateTime()), fmtTime(s.GetExpireTime()), fmtTime(s.GetRevokeTime()), s.GetRevokeReason()}
				},
			}.print(cmd.OutOrStdout())
		})
	}
	return cmd
}

func newRevokeCommand() *cobra.Command {
	var tenant, user, reason, wait string
	var ext externalRevoke
	cmd := &cobra.Command{
		Use:   "revoke (SESSION_ID | --user U | --issuer URL (--sid S | --jti J))",
		Short: "Revoke a session, every session of a user, or an external issuer's session or token",
		Example: `  portcullis revoke ses_0123 --reason "lost phone"
  portcullis revoke --user alice --reason "password reset" --wait 2s
  portcullis revoke --issuer https://idp.example.com/realms/acme --sid 5c1f... --wait 2s`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
	}
	cf := addConnFlags(cmd, "text", "json")
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", "public", "tenant of --user")
	f.StringVar(&user, "user", "", "revoke every live session of this user")
	f.StringVar(&reason, "reason", "", "why (recorded in the session and the audit log)")
	addWaitFlag(cmd, &wait)
	ext.addFlags(cmd) // cli_issuers.go
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if ext.set() {
			return ext.run(cmd, cf, args, user, reason, wait)
		}
		if (len(args) == 1) == (user != "") {
			return usageError{fmt.Errorf("give a SESSION_ID or --user, not both or neither")}
		}
		if err := cf.fitWait(wait); err != nil {
			return err
		}
		return cf.call(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
			w := cmd.OutOrStdout()
			var resp interface {
				proto.Message
				GetEnforcement() *pb.Enforcement
			}
			var line string
			if user != "" {
				r, err := cl.Sessions.RevokeUserSessions(ctx, &pb.RevokeUserSessionsRequest{TenantId: tenant, UserId: user, Reason: reason, Wait: wait})
				if err != nil {
					return err
				}
				resp, line = r, fmt.Sprintf("revoked %s of user %s", plural(int(r.GetRevokedSessions()), "session", "sessions"), printable(user))
			} else {
				r, err := cl.Sessions.RevokeSession(ctx, &pb.RevokeSessionRequest{SessionId: args[0], Reason: reason, Wait: wait})
				if err != nil {
					return err
				}
				resp, line = r, fmt.Sprintf("revoked session %s of user %s", printable(r.GetSession().GetSessionId()), printable(r.GetSession().GetUserId()))
			}
			if cf.output == "json" {
				return jsonLine(w, resp)
			}
			if e := resp.GetEnforcement(); e != nil {
				line += "\n" + enforcementLine(e)
			}
			_, err := fmt.Fprintln(w, line)
			return err
		})
	}
	return cmd
}
