package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
)

func main() {
	if isChild() { // -procs re-executed this binary to run mirrors (child.go)
		os.Exit(childMain())
	}
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if cfg.cpuprofile != "" {
		f, err := os.Create(cfg.cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	_, err = run(cfg, os.Stdout)
	if cfg.cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var c config
	var mirrors, callers string
	fs.StringVar(&mirrors, "mirrors", "1,100,1000", "mirror counts for the enforcement latency rows")
	fs.IntVar(&c.ops, "ops", 100, "operations per enforcement latency row (one at a time)")
	fs.StringVar(&callers, "callers", "1,16,64", "concurrent callers for the throughput rows")
	fs.DurationVar(&c.duration, "duration", 2e9, "duration of each throughput row")
	fs.BoolVar(&c.smoke, "smoke", false, "tiny run (2 mirrors, a few ops) checking correctness only; sizes given as flags are kept")
	fs.BoolVar(&c.progress, "progress", true, "mirrors send progress reports (false: MirrorOptions.DisableProgress)")
	fs.IntVar(&c.memBans, "mem-bans", 100000, "active bans for the mirror memory row (0 skips it)")
	fs.IntVar(&c.memRevoked, "mem-revoked", 10000, "revoked sessions for the mirror memory row")
	fs.IntVar(&c.fanout, "fanout", 1000, "raw Watch subscribers for the fan-out row (0 skips it)")
	fs.IntVar(&c.fanoutWriters, "fanout-writers", 16, "concurrent CreateBan callers during the fan-out row")
	fs.DurationVar(&c.fanoutDuration, "fanout-duration", 2e9, "how long the fan-out row writes")
	fs.IntVar(&c.coldStartBans, "coldstart-bans", 0, "bans for the cold-start row, seeded straight into a store of its own (0 skips it)")
	fs.StringVar(&c.coldStartProfile, "coldstart-cpuprofile", "", "write a CPU profile of the cold-start row's runs (not its seeding) to this file")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.StringVar(&c.dir, "dir", "", "directory for the bbolt file or the embedded etcd's data (default: a temporary directory)")
	fs.IntVar(&c.sustained.rate, "sustained-rate", 200, "bans per second of the sustained enforcement row, with each -mirrors count (0 skips it)")
	fs.DurationVar(&c.sustained.duration, "sustained-duration", 2e9, "how long the sustained enforcement row creates bans")
	fs.StringVar(&c.remote, "authority", "", "measure an authority already running at HOST:PORT (plaintext gRPC) instead of starting one: the write, enforcement and interceptor rows; its abuse limits must be off (serve --create-session-rate -1 --refresh-rate -1 --max-watchers-per-key -1)")
	fs.StringVar(&c.remoteKey, "api-key", os.Getenv("PORTCULLIS_API_KEY"), "an admin API key of -authority (default $PORTCULLIS_API_KEY)")
	fs.StringVar(&c.store, "store", "bolt", "the authority's store: bolt, etcd (an embedded one-member etcd, fsync on), or etcd://host:port[,host:port] (a fresh prefix of that cluster, deleted at the end)")
	fs.IntVar(&c.procs, "procs", 0, "run the enforcement rows' mirrors in this many child processes (0: in this process)")
	fs.IntVar(&c.runs, "runs", 1, "repeat each row this many times and print the median and each run")
	fs.IntVar(&c.interceptorCalls, "interceptor-calls", 0, "calls per variant of the interceptor cost row (0 skips it)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.procs < 0 || c.runs < 1 || c.interceptorCalls < 0 {
		return c, fmt.Errorf("-procs and -interceptor-calls must be >= 0, -runs >= 1")
	}
	var err error
	if err := checkStoreFlag(c.store); err != nil {
		return c, err
	}
	if c.mirrors, err = ints(mirrors); err != nil {
		return c, fmt.Errorf("-mirrors: %w", err)
	}
	if c.callers, err = ints(callers); err != nil {
		return c, fmt.Errorf("-callers: %w", err)
	}
	if c.smoke { // small sizes for the flags not given
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		small := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		small("mirrors", func() { c.mirrors = []int{2} })
		small("ops", func() { c.ops = 5 })
		small("callers", func() { c.callers = []int{1, 4} })
		small("duration", func() { c.duration = 200e6 })
		small("mem-bans", func() { c.memBans = 200 })
		small("mem-revoked", func() { c.memRevoked = 20 })
		small("fanout", func() { c.fanout = 4 })
		small("fanout-writers", func() { c.fanoutWriters = 4 })
		small("fanout-duration", func() { c.fanoutDuration = 200e6 })
		small("interceptor-calls", func() { c.interceptorCalls = 300 })
		small("sustained-rate", func() { c.sustained.rate = 50 })
		small("sustained-duration", func() { c.sustained.duration = 200e6 })
	}
	if err := checkRemote(fs, &c); err != nil {
		return c, err
	}
	c.args = args
	return c, nil
}
