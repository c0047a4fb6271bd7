package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// The operator subcommands (ban, bans, watch, ...) call a running authority
// through the client package. Each command group has its own cli_*.go file;
// this one holds what they share: the connection flags, output formats and
// error reporting.
//
// Connection: --addr (PORTCULLIS_ADDR, default 127.0.0.1:7470), the API key
// from --api-key (PORTCULLIS_API_KEY) or else <--data>/admin.key, the key the
// authority wrote on first start (PORTCULLIS_DATA, default ./data).
// Plaintext on loopback; TLS elsewhere (system roots, or --ca-file) unless
// --insecure.

// connFlags are the flags of every command that calls the authority.
type connFlags struct {
	addr     string
	apiKey   string
	dataDir  string
	caFile   string
	insecure bool
	timeout  time.Duration
	output   string

	fs *pflag.FlagSet
}

// addConnFlags registers the connection flags on cmd, plus -o/--output with
// the given formats (none: no --output flag).
func addConnFlags(cmd *cobra.Command, formats ...string) *connFlags {
	c := &connFlags{fs: pflag.NewFlagSet(cmd.Name(), pflag.ContinueOnError)}
	f := c.fs
	f.StringVar(&c.addr, "addr", "127.0.0.1:7470", "address of the authority's gRPC listener (env PORTCULLIS_ADDR)")
	f.StringVar(&c.apiKey, "api-key", "", "API key (env PORTCULLIS_API_KEY; default: the key in <data>/admin.key)")
	f.StringVar(&c.dataDir, "data", "./data", "data directory whose admin.key is used when no API key is given (env PORTCULLIS_DATA)")
	f.StringVar(&c.caFile, "ca-file", "", "PEM file of the CA that signed the authority's TLS certificate (env PORTCULLIS_CA_FILE)")
	f.BoolVar(&c.insecure, "insecure", false, "plaintext even to a non-loopback address (env PORTCULLIS_INSECURE)")
	f.DurationVar(&c.timeout, "timeout", 30*time.Second, "deadline of each call (env PORTCULLIS_TIMEOUT)")
	if len(formats) > 0 {
		f.StringVarP(&c.output, "output", "o", formats[0], "output format: "+strings.Join(formats, ", "))
		_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
	}
	cmd.Flags().AddFlagSet(f)
	prev := cmd.PreRunE
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		// Only the connection flags come from the environment: a stray
		// PORTCULLIS_REASON must not fill in a ban's reason.
		if err := flagsFromEnv(c.fs); err != nil {
			return err
		}
		if len(formats) > 0 && !contains(formats, c.output) {
			return usageError{fmt.Errorf("--output: want %s, not %q", strings.Join(formats, " or "), c.output)}
		}
		if prev != nil {
			return prev(cmd, args)
		}
		return nil
	}
	return c
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// key returns the API key: the flag or environment, else <data>/admin.key.
func (c *connFlags) key() (string, error) {
	if c.apiKey != "" {
		return c.apiKey, nil
	}
	path := filepath.Join(c.dataDir, "admin.key")
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", usageError{fmt.Errorf("no API key: give --api-key, set PORTCULLIS_API_KEY, or run where %s exists (--data)", path)}
		}
		return "", fmt.Errorf("reading the API key: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// dial connects to the authority.
func (c *connFlags) dial() (*client.Client, error) {
	key, err := c.key()
	if err != nil {
		return nil, err
	}
	return dialAuthority(c.addr, key, c.caFile, c.insecure)
}

// dialAuthority connects to the authority at addrs (host:port, or several
// replicas comma-separated) with an API key: plaintext when every address
// is loopback or insecure is set, TLS otherwise (caFile's CA, else the
// system roots).
func dialAuthority(addrs, key, caFile string, insecure bool) (*client.Client, error) {
	loopback := true
	for _, addr := range strings.Split(addrs, ",") {
		loopback = loopback && isLoopback(strings.TrimSpace(addr))
	}
	opts := []client.Option{client.WithAPIKey(key)}
	switch {
	case insecure || (caFile == "" && loopback):
		opts = append(opts, client.WithInsecure())
	case caFile != "":
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, usageError{fmt.Errorf("--ca-file: %w", err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageError{fmt.Errorf("--ca-file %s: no PEM certificate in it", caFile)}
		}
		opts = append(opts, client.WithTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	default:
		opts = append(opts, client.WithTLS(nil))
	}
	return client.Dial(addrs, opts...)
}

// call runs fn with a connected client and the per-call deadline.
func (c *connFlags) call(ctx context.Context, fn func(ctx context.Context, cl *client.Client) error) error {
	cl, err := c.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	return fn(ctx, cl)
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// errorLine renders err as the one line the CLI prints: for an authority's
// status, "<Code> <REASON>: <message>". The message may quote input, so it
// passes through printable.
func errorLine(err error) string {
	var e *client.Error
	if errors.As(err, &e) {
		if e.Reason != "" {
			return printable(fmt.Sprintf("%s %s: %s", e.Code, e.Reason, e.Message))
		}
		return printable(fmt.Sprintf("%s: %s", e.Code, e.Message))
	}
	return printable(err.Error())
}

// isUsage reports whether err is a mistake in how the command was called:
// a usageError or one of cobra's own argument and command errors.
func isUsage(err error) bool {
	var ue usageError
	if errors.As(err, &ue) {
		return true
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command ") || strings.HasPrefix(msg, "unknown flag") ||
		strings.HasPrefix(msg, "unknown shorthand flag")
}

// usageArgs wraps a cobra argument validator so that its error is a usage
// error (exit code 2).
func usageArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// jsonLine writes m as one line of protojson (JSON lines, for piping).
func jsonLine(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{UseProtoNames: false}.Marshal(m)
	if err != nil {
		return err
	}
	// protojson may add spaces, never newlines, in single-line mode.
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// jsonLines writes each message as one JSON line (a listing's -o json).
func jsonLines[M proto.Message](w io.Writer, ms []M) error {
	for _, m := range ms {
		if err := jsonLine(w, m); err != nil {
			return err
		}
	}
	return nil
}

// table writes aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(header...)
	return t
}

// row writes one row; every cell passes through printable, so that no
// cell can hold a tab (a column of its own), a line break (a row of its
// own) or a terminal escape.
func (t *table) row(cols ...string) {
	for i, c := range cols {
		if c == "" {
			cols[i] = "-"
		} else {
			cols[i] = printable(c)
		}
	}
	fmt.Fprintln(t.tw, strings.Join(cols, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// fmtTime renders a timestamp for humans: RFC 3339 in UTC, "" when unset.
func fmtTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return ts.AsTime().UTC().Format(time.RFC3339)
}

// subjectString renders a ban's subject as kind:value, not yet escaped:
// its printer passes it through printable (once: escaping is not
// idempotent, a backslash doubles).
func subjectString(s *pb.Subject) string {
	switch k := s.GetKind().(type) {
	case *pb.Subject_UserId:
		return "user:" + k.UserId
	case *pb.Subject_Ip:
		return "ip:" + k.Ip
	case *pb.Subject_DeviceId:
		return "device:" + k.DeviceId
	}
	return "?"
}

// banState renders a ban state without its prefix, in lower case.
func banState(s pb.BanState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "BAN_STATE_"))
}

// parseTime parses an RFC 3339 time, or a duration relative to now
// ("24h", "-7d" style durations are not accepted: give a positive one).
func parseTime(flag, s string, now time.Time, past bool) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := parseDurationDays(s)
	if err != nil || d < 0 {
		return time.Time{}, usageError{fmt.Errorf("--%s %q: want an RFC 3339 time (2025-01-02T15:04:05Z) or a duration (24h, 7d)", flag, s)}
	}
	if past {
		return now.Add(-d), nil
	}
	return now.Add(d), nil
}

// parseDurationDays is time.ParseDuration plus a "d" (24h) unit, as the
// authority accepts in ban durations.
func parseDurationDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok && !strings.ContainsAny(n, "hmsun") {
		var days float64
		if _, err := fmt.Sscanf(n, "%g", &days); err != nil {
			return 0, err
		}
		return time.Duration(days * float64(24*time.Hour)), nil
	}
	return time.ParseDuration(s)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// runWith runs the command line args with its output on stdout and stderr
// and returns the exit code: 0 ok, 1 error, 2 usage. Errors are one line:
// "portcullis: <Code> <REASON>: <message>" for the authority's refusals.
func runWith(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return exitOK
	case isUsage(err):
		fmt.Fprintln(stderr, "portcullis:", err)
		return exitUsage
	default:
		fmt.Fprintln(stderr, "portcullis:", errorLine(err))
		return exitError
	}
}

// listing prints every page of a List RPC: a table (header, then one row
// per item) when output is "table", JSON lines otherwise. fetch returns one
// page and the next page token ("" on the last page); limit > 0 stops after
// that many items.
type listing[T proto.Message] struct {
	output string
	limit  int
	header []string
	fetch  func(pageToken string) (items []T, next string, err error)
	row    func(T) []string
}

func (l listing[T]) print(w io.Writer) error {
	var t *table
	if l.output == "table" {
		t = newTable(w, l.header...)
	}
	n, token := 0, ""
	for {
		items, next, err := l.fetch(token)
		if err != nil {
			return err
		}
		for _, it := range items {
			if l.limit > 0 && n >= l.limit {
				break
			}
			n++
			if t != nil {
				t.row(l.row(it)...)
			} else if err := jsonLine(w, it); err != nil {
				return err
			}
		}
		if next == "" || (l.limit > 0 && n >= l.limit) {
			break
		}
		token = next
	}
	if t != nil {
		return t.flush()
	}
	return nil
}
