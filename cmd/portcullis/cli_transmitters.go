package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// The transmitters commands manage the Shared Signals transmitters the
// authority receives security events from (SignalService).
func newTransmittersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "transmitters",
		Short: "Add, list, show or remove Shared Signals transmitters this authority receives from (needs scope admin)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{fmt.Errorf("transmitters: give a subcommand: add, list, show or rm")}
		},
	}
	cmd.AddCommand(newTransmittersAddCommand(), newTransmittersListCommand(), newTransmittersShowCommand(), newTransmittersRemoveCommand())
	return cmd
}

func newTransmittersAddCommand() *cobra.Command {
	var req pb.CreateTransmitterRequest
	var banDuration time.Duration
	cmd := &cobra.Command{
		Use:   "add CONFIG_URL --tenant T [--audience A]",
		Short: "Receive a transmitter's signals: the authority fetches its configuration and keys and creates a stream at it",
		Long: `Receive a Shared Signals transmitter's security events: the authority fetches
CONFIG_URL (the transmitter's /.well-known/ssf-configuration, or its issuer
URL) and its JWKS, then creates a stream at it asking for CAEP
session-revoked and RISC account-disabled, account-enabled,
credential-compromise and account-purged, delivered by push to
<--public-url>/ssf/receive/<id> (default) or polled. Signals ban the user
in --tenant (for --ban-duration; default permanent) or revoke sessions.`,
		Example: `  portcullis transmitters add https://idp.example.com --audience https://portcullis.example.com --tenant acme --bearer-token-file tx.token`,
		Args:    usageArgs(cobra.ExactArgs(1)),
	}
	cf := addConnFlags(cmd, "text", "json")
	f := cmd.Flags()
	var tokenFile string
	f.StringVar(&req.Audience, "audience", "", `the "aud" the transmitter's SETs carry for this authority (default: the one the transmitter sets for the stream)`)
	f.StringVar(&req.TenantId, "tenant", "", `the tenant of the bans its signals make (required; "*" for every tenant)`)
	f.StringVar(&req.Delivery, "delivery", "push", `"push" (the transmitter POSTs SETs here) or "poll" (the authority polls it)`)
	f.StringVar(&tokenFile, "bearer-token-file", "", "a file holding the credential the authority presents to the transmitter (kept out of the process list)")
	f.DurationVar(&banDuration, "ban-duration", 0, "how long a ban its signals make lasts (default permanent)")
	f.StringVar(&req.Description, "description", "", "free text")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		req.ConfigUrl = args[0]
		if banDuration < 0 {
			return usageError{fmt.Errorf("--ban-duration must not be negative")}
		}
		if banDuration > 0 {
			req.BanDuration = durationpb.New(banDuration)
		}
		if tokenFile != "" {
			b, err := os.ReadFile(tokenFile)
			if err != nil {
				return fmt.Errorf("reading --bearer-token-file: %w", err)
			}
			req.BearerToken = strings.TrimSpace(string(b))
		}
		return cf.call(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
			resp, err := cl.Signals.CreateTransmitter(ctx, &req)
			if err != nil {
				return err
			}
			out := resp.GetTransmitter()
			w := cmd.OutOrStdout()
			if cf.output == "json" {
				return jsonLine(w, out)
			}
			_, err = fmt.Fprintf(w, "added transmitter %s (issuer %s, %s, stream %s) with keys %s\n", printable(out.GetTransmitterId()),
				printable(out.GetIssuer()), printable(out.GetDelivery()), printable(out.GetStreamId()), printable(strings.Join(out.GetKeyIds(), ",")))
			return err
		})
	}
	return cmd
}

func newTransmittersListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the transmitters, their keys and how the last fetches of them went",
		Args:  usageArgs(cobra.NoArgs),
	}
	cf := addConnFlags(cmd, "table", "json")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return cf.call(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
			resp, err := cl.Signals.ListTransmitters(ctx, &pb.ListTransmittersRequest{})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if cf.output == "json" {
				return jsonLines(w, resp.GetTransmitters())
			}
			t := newTable(w, "ID", "ISSUER", "DELIVERY", "TENANT", "STREAM", "KEYS", "LAST_SUCCESS", "LAST_ERROR")
			for _, x := range resp.GetTransmitters() {
				st := x.GetFetchStatus()
				t.row(x.GetTransmitterId(), x.GetIssuer(), x.GetDelivery(), x.GetTenantId(), x.GetStreamId(),
					strings.Join(x.GetKeyIds(), ","), fmtTime(st.GetLastSuccessTime()), st.GetLastError())
			}
			return t.flush()
		})
	}
	return cmd
}

func newTransmittersShowCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one transmitter",
		Args:  usageArgs(cobra.ExactArgs(1)),
	}
	cf := addConnFlags(cmd, "text", "json")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return cf.call(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
			resp, err := cl.Signals.GetTransmitter(ctx, &pb.GetTransmitterRequest{TransmitterId: args[0]})
			if err != nil {
				return err
			}
			x := resp.GetTransmitter()
			w := cmd.OutOrStdout()
			if cf.output == "json" {
				return jsonLine(w, x)
			}
			ban := "permanent"
			if d := x.GetBanDuration(); d != nil {
				ban = d.AsDuration().String()
			}
			st := x.GetFetchStatus()
			for _, kv := range [][2]string{
				{"id", x.GetTransmitterId()}, {"issuer", x.GetIssuer()}, {"config_url", x.GetConfigUrl()},
				{"audience", x.GetAudience()}, {"delivery", x.GetDelivery()}, {"poll_url", x.GetPollUrl()},
				{"stream_id", x.GetStreamId()}, {"tenant", x.GetTenantId()}, {"ban_duration", ban},
				{"keys", strings.Join(x.GetKeyIds(), ",")}, {"last_success", fmtTime(st.GetLastSuccessTime())},
				{"last_error", st.GetLastError()}, {"description", x.GetDescription()},
				{"created", fmtTime(x.GetCreateTime())}, {"created_by", x.GetCreatedBy()},
			} {
				if _, err := fmt.Fprintf(w, "%-13s %s\n", kv[0]+":", printable(kv[1])); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return cmd
}

func newTransmittersRemoveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rm ID",
		Short: "Stop receiving from a transmitter (its stream there is deleted, best effort)",
		Args:  usageArgs(cobra.ExactArgs(1)),
	}
	cf := addConnFlags(cmd, "text", "json")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return cf.call(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
			if _, err := cl.Signals.DeleteTransmitter(ctx, &pb.DeleteTransmitterRequest{TransmitterId: args[0]}); err != nil {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "removed transmitter %s\n", printable(args[0]))
			return err
		})
	}
	return cmd
}
