package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

func newAuditCommand() *cobra.Command {
	var tenant, subject, actor, action, channel, since, until string
	var limit int
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "List audit records: bans, lifts, revocations, key changes, refused calls",
		Example: `  portcullis audit --subject user:alice
  portcullis audit --action ban.create --since 24h -o json
  portcullis audit --channel console --since 7d`,
		Args: usageArgs(cobra.NoArgs),
	}
	cf := addConnFlags(cmd, "table", "json")
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", "", "only this tenant")
	f.StringVar(&subject, "subject", "", "only this subject (as recorded, e.g. user:alice)")
	f.StringVar(&actor, "actor", "", "only this actor (API key name)")
	f.StringVar(&action, "action", "", "only this action")
	f.StringVar(&channel, "channel", "", "only records made through this channel: grpc or console")
	f.StringVar(&since, "since", "", "only records at or after this time (RFC 3339, or a duration ago: 24h, 7d)")
	f.StringVar(&until, "until", "", "only records before this time (RFC 3339, or a duration ago)")
	f.IntVar(&limit, "limit", 0, "at most this many records (0: all)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		req := &pb.ListAuditRecordsRequest{TenantId: tenant, Subject: subject, Actor: actor, Action: action, Channel: channel}
		now := time.Now()
		if since != "" {
			t, err := parseTime("since", since, now, true)
			if err != nil {
				return err
			}
			req.StartTime = timestamppb.New(t)
		}
		if until != "" {
			t, err := parseTime("until", until, now, true)
			if err != nil {
				return err
			}
			req.EndTime = timestamppb.New(t)
		}
		return cf.call(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
			return listing[*pb.AuditRecord]{
				output: cf.output, limit: limit,
				header: []string{"TIME", "ACTION", "ACTOR", "CHANNEL", "ADDRESS", "TENANT", "SUBJECT", "TARGET", "REASON", "POLICY"},
				fetch: func(token string) ([]*pb.AuditRecord, string, error) {
					req.PageToken = token
					resp, err := cl.Audit.ListAuditRecords(ctx, req)
					return resp.GetRecords(), resp.GetNextPageToken(), err
				},
				row: func(r *pb.AuditRecord) []string {
					return []string{fmtTime(r.GetTime()), r.GetAction(), r.GetActor(), r.GetChannel(), r.GetActorAddress(), r.GetTenantId(),
						r.GetSubject(), r.GetTargetId(), r.GetReason(), r.GetPolicy()}
				},
			}.print(cmd.OutOrStdout())
		})
	}
	return cmd
}
