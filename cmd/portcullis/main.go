package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// usageError marks an error in how the command was called.
type usageError struct{ error }

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	return runWith(context.Background(), args, os.Stdout, os.Stderr)
}

// newRootCommand builds the command tree. cobra is the CLI library of
// kubectl, etcdctl and buf: subcommands, POSIX flags, help and shell
// completion come with it.
func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "portcullis",
		Short:         "Portcullis: the session-and-ban authority of a Go service fleet",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newServeCommand(), newRecoverAdminCommand(), newAgentCommand())
	root.AddCommand(newOperatorCommands()...)
	return root
}

// flagsFromEnv sets every flag of fs that was not given on the command line
// from its PORTCULLIS_* environment variable.
func flagsFromEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || err != nil {
			return
		}
		name := "PORTCULLIS_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = usageError{fmt.Errorf("%s=%q: %w", name, v, e)}
			}
		}
	})
	return err
}
