// Command portcullis is the Portcullis binary: `portcullis serve` runs the
// authority; the operator subcommands call it.
//
// It is wiring only: flags and environment, the store, the authority, the
// gRPC and HTTP listeners, signals. It may import every package of the
// module.
//
// Every flag can also be set with an environment variable: PORTCULLIS_ and
// the flag name in upper case with dashes as underscores (--http-listen is
// PORTCULLIS_HTTP_LISTEN). A flag given on the command line wins.
package main
