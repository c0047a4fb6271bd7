// Command bench is the benchmark harness behind BENCHMARKS.md (issue 8).
// It starts a real authority (bbolt file in a temporary directory, gRPC on
// loopback TCP) and N client.Mirrors in the same process, and prints:
//
//   - ban-to-enforcement latency: from CreateBan's acknowledgement until
//     every mirror has applied the ban (each mirror's OnEvent hook stamps
//     the moment its state refuses the user), p50/p99/max, per N; the
//     same for RevokeSession and for LiftBan (accepted again);
//   - durable write throughput of CreateBan, CreateSession and
//     RefreshSession with 1, 16 and 64 concurrent callers (no mirrors).
//
// Usage:
//
//	go run ./bench [-mirrors 1,100,1000] [-ops 100] [-callers 1,16,64] [-duration 2s]
//	go run ./bench -smoke   # N=2 mirrors, a few operations: correctness only
//
// It reports; it never fails on a time.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if _, err := run(cfg, os.Stdout); err != nil {
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
	}
	c.args = args
	return c, nil
}
