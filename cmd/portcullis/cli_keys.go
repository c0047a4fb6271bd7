package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

func newKeysCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "List or rotate the token signing keys",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{fmt.Errorf("keys: give a subcommand: list or rotate")}
		},
	}
	cmd.AddCommand(newKeysListCommand(), newKeysRotateCommand())
	return cmd
}

func newKeysListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the verification keys (current and retired-but-still-valid)",
		Args:  usageArgs(cobra.NoArgs),
	}
	cf := addConnFlags(cmd, "table", "json")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return cf.call(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
			resp, err := cl.Keys.ListKeys(ctx, &pb.ListKeysRequest{})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if cf.output == "json" {
				return jsonLines(w, resp.GetKeys())
			}
			t := newTable(w, "KEY_ID", "ALGORITHM", "CREATED", "RETIRED", "VERIFY_UNTIL")
			for _, k := range resp.GetKeys() {
				t.row(k.GetKeyId(), k.GetAlgorithm(), fmtTime(k.GetCreateTime()), fmtTime(k.GetRetireTime()), fmtTime(k.GetVerifyUntil()))
			}
			return t.flush()
		})
	}
	return cmd
}

func newKeysRotateCommand() *cobra.Command {
	var reason, alg string
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Create a new signing key; the old one verifies until its tokens expire",
		Args:  usageArgs(cobra.NoArgs),
	}
	cf := addConnFlags(cmd, "text", "json")
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit log)")
	cmd.Flags().StringVar(&alg, "algorithm", "", `which key: "" or EdDSA (the access-token key), or RS256 (the key of RS256 Shared Signals streams; the old one stays published for an hour)`)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return cf.call(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
			resp, err := cl.Keys.RotateKey(ctx, &pb.RotateKeyRequest{Reason: reason, Algorithm: alg})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if cf.output == "json" {
				return jsonLine(w, resp)
			}
			fmt.Fprintf(w, "new signing key %s (%s)\n", printable(resp.GetKey().GetKeyId()), printable(resp.GetKey().GetAlgorithm()))
			if r := resp.GetRetiredKey(); r != nil {
				fmt.Fprintf(w, "retired key %s verifies until %s\n", printable(r.GetKeyId()), fmtTime(r.GetVerifyUntil()))
			}
			return nil
		})
	}
	return cmd
}
