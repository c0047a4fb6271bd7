// Command bench is the benchmark harness behind BENCHMARKS.md.
// It starts a real authority (a bbolt file in a temporary directory, or
// etcd with -store; gRPC on loopback TCP) and N client.Mirrors, in the same process or (-procs) in
// child processes, and prints:
//
//   - ban-to-enforcement latency: from CreateBan's acknowledgement until
//     every mirror has applied the ban (each mirror's OnEvent hook stamps
//     the moment its state refuses the user), p50/p99/max, per N; the
//     same for RevokeSession and for LiftBan (accepted again). A mirror
//     may apply a change before the caller has its acknowledgement; such
//     a sample counts as 0;
//   - the same for bans under sustained load: CreateBan at
//     -sustained-rate per second (default 200) for -sustained-duration
//     (2s), each issued at its scheduled time from its own goroutine (an
//     open loop), each measured from its own acknowledgement;
//   - durable write throughput of CreateBan, CreateSession and
//     RefreshSession with 1, 16 and 64 concurrent callers (no mirrors);
//   - mirror memory: the heap one mirror holds once it has loaded 100k
//     active bans and 10k revoked sessions through Watch (a fresh
//     authority; heap after GC with the mirror reachable minus without);
//   - Watch fan-out: ban events per second delivered to 1,000 raw Watch
//     subscribers (Recv loops, no Mirror) while 16 callers create bans;
//   - with -interceptor-calls N: the cost of a unary call (one caller,
//     loopback TCP) through interceptors.UnaryServerInterceptor over a
//     synced mirror, with the same valid token every call (cached) and
//     with a token never seen before every call (first-seen: a signature
//     verification), against the same service without the interceptor
//     (bare), as ns/call, the difference and the ratio. Two controls send
//     the bare service the cached token and the first-seen tokens: how
//     much of each cost is the 500-byte header rather than the check. The
//     variants are interleaved in rounds of 100 calls, and each figure is
//     a median over the rounds (the difference and ratio of each round
//     paired with its bare round), which a burst of other load on the
//     shared machine moves little; the first-seen
//     tokens are created before the timed calls (CreateSession each), and
//     the row reports how many tokens the mirror's cache gained, which is
//     how many were verified (interceptor.go).
//
// -coldstart-bans N adds the cold-start row: N active user bans written
// straight into a store of the row's own (large transactions, not
// CreateBan), then, each run, a fresh authority on it (nothing cached) and
// one mirror (no progress reports: the harness's 3 s progress timeout would
// end a long snapshot's stream). It prints the time from the mirror's start
// to the snapshot's first part, to its last part (the authority sends each
// part as soon as it has encoded it: this is also its reading the store),
// and to synced, the process's CPU time
// meanwhile (on a shared machine the steadier figure), the peak of heap
// objects above the level before the mirror started (sampled every
// millisecond; authority and mirror together) and the bytes allocated;
// -coldstart-cpuprofile FILE profiles those runs only (coldstart.go).
//
// -runs R repeats every row R times and prints medians and each run's
// value, in the order they ran: for the enforcement and interceptor rows
// the median of each statistic (of each run's own difference and ratio),
// for the others the run with the median rate or heap.
//
// -procs P runs the enforcement rows' mirrors in P child processes (N/P
// each, the remainder one more in the first): the bench re-executes
// itself (os.Executable) with PORTCULLIS_BENCH_CHILD set, and the
// authority's address and API key in the environment. Each child starts
// its mirrors with the in-process options, prints "synced", then one line
// per event each mirror applies with the wall-clock time its OnEvent hook
// ran (parent and children share the machine's CLOCK_REALTIME), so the
// parent computes the same ack-to-last-mirror latency as in-process. The
// hook only stamps and queues; one goroutine writes the lines, flushing
// whenever its queue is empty: the timestamp does not wait for the pipe,
// and the writer costs the mirrors one write(2) per burst of CPU (child.go).
// A child exits when its stdin closes, so children die with the parent;
// its stderr is the parent's. The synced time then includes starting the
// processes. -procs does not change the other rows.
//
// -store picks the authority's store for every row: bolt (the default, a
// bbolt file), etcd (an etcd member embedded in the process, fsync on, its
// data in -dir: the etcd rows of BENCHMARKS.md), or etcd://host:port[,...]
// (an external cluster, under a prefix of the run's own that is deleted at
// the end).
//
// -authority HOST:PORT (with -api-key, an admin key) measures an
// authority that is already running, `portcullis serve` on another
// machine say, instead of starting one: the write, enforcement and
// interceptor rows, with the mirrors (and their clock) on this machine.
// The memory and fan-out rows need an authority of their own and are off.
// The authority's abuse limits must be off (serve --create-session-rate -1
// --refresh-rate -1 --max-watchers-per-key -1), or its CreateSession and
// RefreshSession limits refuse the write rows.
//
// Usage:
//
//	go run ./bench [-mirrors 1,100,1000] [-ops 100] [-callers 1,16,64] [-duration 2s]
//	               [-mem-bans 100000] [-mem-revoked 10000] [-fanout 1000]
//	               [-fanout-writers 16] [-fanout-duration 2s] [-cpuprofile f]
//	               [-procs 0] [-runs 1] [-interceptor-calls 0] [-store bolt]
//	               [-sustained-rate 200] [-sustained-duration 2s]
//	               [-coldstart-bans 0] [-coldstart-cpuprofile f]
//	               [-authority HOST:PORT -api-key KEY]
//	go run ./bench -smoke   # N=2 mirrors, a few operations: correctness only
//
// -smoke makes every size not given as a flag small (300 interceptor
// calls); go test ./bench runs it in-process, with -procs 2, and with
// -store etcd.
// -mirrors "" and -callers "" skip their rows, as -mem-bans 0, -fanout 0
// and -interceptor-calls 0 and -sustained-rate 0 do.
//
// It reports; it never fails on a time.
//
// It may import every package of the module: it wires a real authority and
// real mirrors together, like cmd/portcullis does.
package main
