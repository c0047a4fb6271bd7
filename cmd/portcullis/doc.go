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
//
// The operator subcommands (ban, unban, bans, check, sessions, revoke, audit,
// watch, keys, apikeys, version, completion) call a running authority
// through the client package, as any other client would. They
// read --addr, --api-key, --data, --ca-file, --insecure and --timeout also
// from PORTCULLIS_ADDR, PORTCULLIS_API_KEY, ...; without a key they use
// <data>/admin.key. Exit codes: 0 ok, 1 error (the authority refused or could
// not be reached: one line "portcullis: <Code> <REASON>: <message>"), 2 usage.
//
// `portcullis agent` (agent.go) is a long-running companion for gateways
// and services in any language: it dials the authority with an
// events:watch API key (--authority, --api-key-file, the CLI's TLS rules),
// runs a client.Mirror and serves package agent's front doors, on loopback
// by default: forward-auth /authz, /introspect (with
// --introspect-secret-file), /healthz, /readyz and /metrics on --listen,
// Envoy ext_authz v3 on --ext-authz-listen. Off loopback the listeners
// need --tls-cert or --insecure. --config (YAML: routes, public,
// trusted_proxies, client_ip_header, device_header) is re-read on SIGHUP;
// a file that does not load keeps the running configuration and is
// logged. A refused API key stops it at start; an unreachable authority
// does not (the mirror retries and /readyz says not ready).
//
// `portcullis recover-admin` is neither: it opens the store
// itself, with serve's store flags, to write a new admin key when none is
// left, and refuses a bbolt file a running authority holds.
//
// Why cobra: it is the CLI library of kubectl, etcdctl and buf, so operators
// already know its conventions (subcommands, POSIX flags, --help on every
// level, "completion bash|zsh|fish|powershell"), and it is maintained and
// widely reviewed. The standard flag package has no subcommands, no
// completion and no GNU-style flags; urfave/cli would do, but is less common
// among the infrastructure tools Portcullis sits next to.
package main
