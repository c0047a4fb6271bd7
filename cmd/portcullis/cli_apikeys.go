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

func newAPIKeysCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apikeys",
		Short: "Create, list or revoke API keys (needs scope admin)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{fmt.Errorf("apikeys: give a subcommand: create, list or revoke")}
		},
	}
	cmd.AddCommand(newAPIKeysCreateCommand(), newAPIKeysListCommand(), newAPIKeysRevokeCommand())
	return cmd
}

func newAPIKeysCreateCommand() *cobra.Command {
	var scopes []string
	var expires string
	cmd := &cobra.Command{
		Use:   "create NAME --scope SCOPE...",
		Short: "Create an API key; its secret is printed once",
		Long: `Create an API key. Scopes: sessions:write, sessions:read, bans:write,
bans:read, events:watch, audit:read, keys:read, keys:admin, admin. The secret
is shown once and stored only as a hash (-o secret prints the secret alone,
for scripts).`,
		Example: `  portcullis apikeys create api-gateway --scope sessions:write --scope sessions:read --scope events:watch`,
		Args:    usageArgs(cobra.ExactArgs(1)),
	}
	cf := addConnFlags(cmd, "text", "json", "secret")
	cmd.Flags().StringArrayVar(&scopes, "scope", nil, "a scope the key grants (repeatable)")
	cmd.Flags().StringVar(&expires, "expires", "", "when the key expires: RFC 3339, or a duration from now (720h, 90d); default never")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		req := &pb.CreateAPIKeyRequest{Name: args[0], Scopes: scopes}
		if expires != "" {
			t, err := parseTime("expires", expires, time.Now(), false)
			if err != nil {
				return err
			}
			req.ExpireTime = timestamppb.New(t)
		}
		return cf.call(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
			resp, err := cl.APIKeys.CreateAPIKey(ctx, req)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			switch cf.output {
			case "json":
				return jsonLine(w, resp)
			case "secret":
				_, err := fmt.Fprintln(w, resp.GetSecret())
				return err
			}
			k := resp.GetApiKey()
			_, err = fmt.Fprintf(w, "created API key %s (%s) with scopes %s\nsecret (shown once): %s\n",
				printable(k.GetName()), printable(k.GetApiKeyId()), printable(strings.Join(k.GetScopes(), ",")), printable(resp.GetSecret()))
			return err
		})
	}
	return cmd
}

func newAPIKeysListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List API keys (never their secrets)",
		Args:  usageArgs(cobra.NoArgs),
	}
	cf := addConnFlags(cmd, "table", "json")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return cf.call(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
			resp, err := cl.APIKeys.ListAPIKeys(ctx, &pb.ListAPIKeysRequest{})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if cf.output == "json" {
				return jsonLines(w, resp.GetApiKeys())
			}
			t := newTable(w, "API_KEY_ID", "NAME", "SCOPES", "CREATED", "EXPIRES", "REVOKED")
			for _, k := range resp.GetApiKeys() {
				t.row(k.GetApiKeyId(), k.GetName(), strings.Join(k.GetScopes(), ","), fmtTime(k.GetCreateTime()),
					fmtTime(k.GetExpireTime()), fmtTime(k.GetRevokeTime()))
			}
			return t.flush()
		})
	}
	return cmd
}

func newAPIKeysRevokeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke API_KEY_ID",
		Short: "Revoke an API key: its next call is refused",
		Long: `Revoke an API key: its next call is refused, and its open Watch streams end.
The last unrevoked, unexpired key with scope admin cannot be revoked
(FailedPrecondition LAST_ADMIN_KEY): create another admin key first. With no
admin key left, see portcullis recover-admin.`,
		Args: usageArgs(cobra.ExactArgs(1)),
	}
	cf := addConnFlags(cmd, "text", "json")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return cf.call(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
			resp, err := cl.APIKeys.RevokeAPIKey(ctx, &pb.RevokeAPIKeyRequest{ApiKeyId: args[0]})
			if err != nil {
				return err
			}
			if cf.output == "json" {
				return jsonLine(cmd.OutOrStdout(), resp)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "revoked API key %s (%s)\n", printable(resp.GetApiKey().GetName()), printable(resp.GetApiKey().GetApiKeyId()))
			return err
		})
	}
	return cmd
}
