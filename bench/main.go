// Command bench is the benchmark harness behind BENCHMARKS.md (issue 8).
// It starts a real authority (bbolt file in a temporary directory, gRPC on
// loopback TCP) and N client.Mirrors in the same process, and prints:
//
//   - ban-to-enforcement latency: from CreateBan's acknowledgement until
//     every mirror has applied the ban (each mirror's OnEvent hook stamps
//     the moment its state refuses the user), p50/p99/max, per N; the
//     same for RevokeSession and for LiftBan (accepted again);
//   - durable write throughput of CreateBan, CreateSession and
//     RefreshSession with 1, 16 and 64 concurrent callers (no mirrors);
//   - mirror memory: the heap one mirror holds once it has loaded 100k
//     active bans and 10k revoked sessions through Watch (a fresh
//     authority; heap after GC with the mirror reachable minus without);
//   - Watch fan-out: ban events per second delivered to 1,000 raw Watch
//     subscribers (Recv loops, no Mirror) while 16 callers create bans.
//
// Usage:
//
//	go run ./bench [-mirrors 1,100,1000] [-ops 100] [-callers 1,16,64] [-duration 2s]
//	               [-mem-bans 100000] [-mem-revoked 10000] [-fanout 1000]
//	               [-fanout-writers 16] [-fanout-duration 2s] [-cpuprofile f]
//	go run ./bench -smoke   # N=2 mirrors, a few operations: correctness only
//
// It reports; it never fails on a time.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
)

func main() {
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
	fs.BoolVar(&c.smoke, "smoke", false, "tiny run (2 mirrors, a few ops) checking correctness only")
	fs.BoolVar(&c.progress, "progress", true, "mirrors send progress reports (false: MirrorOptions.DisableProgress)")
	fs.IntVar(&c.memBans, "mem-bans", 100000, "active bans for the mirror memory row (0 skips it)")
	fs.IntVar(&c.memRevoked, "mem-revoked", 10000, "revoked sessions for the mirror memory row")
	fs.IntVar(&c.fanout, "fanout", 1000, "raw Watch subscribers for the fan-out row (0 skips it)")
	fs.IntVar(&c.fanoutWriters, "fanout-writers", 16, "concurrent CreateBan callers during the fan-out row")
	fs.DurationVar(&c.fanoutDuration, "fanout-duration", 2e9, "how long the fan-out row writes")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.StringVar(&c.dir, "dir", "", "directory for the bbolt file (default: a temporary directory)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var err error
	if c.mirrors, err = ints(mirrors); err != nil {
		return c, fmt.Errorf("-mirrors: %w", err)
	}
	if c.callers, err = ints(callers); err != nil {
		return c, fmt.Errorf("-callers: %w", err)
	}
	if c.smoke {
		c.mirrors, c.ops, c.callers, c.duration = []int{2}, 5, []int{1, 4}, 200e6
		c.memBans, c.memRevoked, c.fanout, c.fanoutWriters, c.fanoutDuration = 200, 20, 4, 4, 200e6
	}
	c.args = args
	return c, nil
}
