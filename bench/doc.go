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
//
// It may import every package of the module: it wires a real authority and
// real mirrors together, like cmd/portcullis does.
package main
