package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// The issuers commands manage the external OIDC issuers whose access
// tokens the authority and every mirror accept (IssuerService).
func newIssuersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "issuers",
		Short: "Trust, list or remove external OIDC issuers (needs scope admin)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{fmt.Errorf("issuers: give a subcommand: add, update, list or rm")}
		},
	}
	cmd.AddCommand(newIssuersAddCommand("add"), newIssuersAddCommand("update"), newIssuersListCommand(), newIssuersRemoveCommand())
	return cmd
}

// newIssuersAddCommand is "issuers add" (CreateIssuer) or "issuers
// update" (UpdateIssuer), which take the same settings.
func newIssuersAddCommand(verb string) *cobra.Command {
	var is pb.Issuer
	var leeway, maxLifetime time.Duration
	short := "Trust an OIDC issuer: the authority fetches its keys and every mirror accepts its tokens"
	if verb == "update" {
		short = "Replace an issuer's settings (unset ones take their defaults) and refetch its keys"
	}
	cmd := &cobra.Command{
		Use:   verb + " ISSUER_URL --tenant T --audience A...",
		Short: short,
		Long: short + `.
ISSUER_URL is exactly the "iss" of the issuer's tokens (https; http only on
loopback, or when the authority runs with --insecure). Its users belong to
--tenant: bans in that tenant (and "*") apply to them.`,
		Example: `  portcullis issuers ` + verb + ` https://idp.example.com/realms/acme --tenant acme --audience api`,
		Args:    usageArgs(cobra.ExactArgs(1)),
	}
	cf := addConnFlags(cmd, "text", "json")
	f := cmd.Flags()
	f.StringVar(&is.TenantId, "tenant", "", "the tenant the issuer's users belong to (required)")
	f.StringArrayVar(&is.Audiences, "audience", nil, `an accepted "aud" (repeatable; at least one)`)
	f.StringVar(&is.UserClaim, "user-claim", "", `the claim naming the user (default "sub")`)
	f.StringVar(&is.SessionClaim, "session-claim", "", `the claim naming the session (default "sid")`)
	f.StringArrayVar(&is.Algorithms, "alg", nil, "an accepted algorithm: RS256, PS256, ES256, EdDSA (repeatable; default all four)")
	f.DurationVar(&leeway, "leeway", 0, "clock skew tolerated on exp, nbf, iat (default 1m, at most 5m)")
	f.DurationVar(&maxLifetime, "max-token-lifetime", 0, "the longest lifetime of the issuer's access tokens (default 24h)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		is.Issuer = args[0]
		if leeway != 0 {
			is.Leeway = durationpb.New(leeway)
		}
		if maxLifetime != 0 {
			is.MaxTokenLifetime = durationpb.New(maxLifetime)
		}
		return cf.call(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
			var out *pb.Issuer
			if verb == "update" {
				resp, err := cl.Issuers.UpdateIssuer(ctx, &pb.UpdateIssuerRequest{Issuer: &is})
				if err != nil {
					return err
				}
				out = resp.GetIssuer()
			} else {
				resp, err := cl.Issuers.CreateIssuer(ctx, &pb.CreateIssuerRequest{Issuer: &is})
				if err != nil {
					return err
				}
				out = resp.GetIssuer()
			}
			w := cmd.OutOrStdout()
			if cf.output == "json" {
				return jsonLine(w, out)
			}
			_, err := fmt.Fprintf(w, "%s issuer %s (tenant %s) with keys %s\n", map[string]string{"add": "trusted", "update": "updated"}[verb],
				printable(out.GetIssuer()), printable(out.GetTenantId()), printable(keyIDs(out)))
			return err
		})
	}
	return cmd
}

func keyIDs(is *pb.Issuer) string {
	ids := make([]string, len(is.GetKeys()))
	for i, k := range is.GetKeys() {
		ids[i] = k.GetKeyId()
	}
	return strings.Join(ids, ",")
}

func newIssuersListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the trusted issuers, their keys and how the last fetches of them went",
		Args:  usageArgs(cobra.NoArgs),
	}
	cf := addConnFlags(cmd, "table", "json")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return cf.call(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
			resp, err := cl.Issuers.ListIssuers(ctx, &pb.ListIssuersRequest{})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if cf.output == "json" {
				return jsonLines(w, resp.GetIssuers())
			}
			t := newTable(w, "ISSUER", "TENANT", "AUDIENCES", "KEYS", "LAST_SUCCESS", "LAST_ERROR_TIME", "LAST_ERROR")
			for _, is := range resp.GetIssuers() {
				st := is.GetFetchStatus()
				t.row(is.GetIssuer(), is.GetTenantId(), strings.Join(is.GetAudiences(), ","), keyIDs(is),
					fmtTime(st.GetLastSuccessTime()), fmtTime(st.GetLastErrorTime()), st.GetLastError())
			}
			return t.flush()
		})
	}
	return cmd
}

func newIssuersRemoveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rm ISSUER_URL",
		Short: "Stop trusting an issuer: every mirror refuses its tokens once it has the change",
		Args:  usageArgs(cobra.ExactArgs(1)),
	}
	cf := addConnFlags(cmd, "text", "json")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return cf.call(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
			if _, err := cl.Issuers.DeleteIssuer(ctx, &pb.DeleteIssuerRequest{Issuer: args[0]}); err != nil {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "removed issuer %s\n", printable(args[0]))
			return err
		})
	}
	return cmd
}

// externalRevoke is the revoke command's form for an external issuer:
// --issuer URL with --sid (the issuer's session claim) or --jti (one
// token).
type externalRevoke struct{ issuer, sid, jti string }

func (x *externalRevoke) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&x.issuer, "issuer", "", "an external issuer's URL: revoke its session --sid or its token --jti")
	f.StringVar(&x.sid, "sid", "", "with --issuer: the session to revoke (the issuer's session claim, sid by default)")
	f.StringVar(&x.jti, "jti", "", "with --issuer: the one token to revoke (its jti)")
}

func (x *externalRevoke) set() bool { return x.issuer != "" || x.sid != "" || x.jti != "" }

func (x *externalRevoke) run(cmd *cobra.Command, cf *connFlags, args []string, user, reason, wait string) error {
	if x.issuer == "" || len(args) != 0 || user != "" || (x.sid == "") == (x.jti == "") {
		return usageError{fmt.Errorf("revoke --issuer URL takes --sid S or --jti J (exactly one), no SESSION_ID and no --user")}
	}
	if err := cf.fitWait(wait); err != nil {
		return err
	}
	return cf.call(cmd.Context(), func(ctx context.Context, cl *client.Client) error {
		r, err := cl.Sessions.RevokeSession(ctx, &pb.RevokeSessionRequest{Issuer: x.issuer, SessionId: x.sid, TokenId: x.jti, Reason: reason, Wait: wait})
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		if cf.output == "json" {
			return jsonLine(w, r)
		}
		what := "session " + printable(x.sid)
		if x.jti != "" {
			what = "token " + printable(x.jti)
		}
		line := fmt.Sprintf("revoked %s of issuer %s until %s", what, printable(x.issuer), fmtTime(r.GetSession().GetAccessExpireTime()))
		if e := r.GetEnforcement(); e != nil {
			line += "\n" + enforcementLine(e)
		}
		_, err = fmt.Fprintln(w, line)
		return err
	})
}
