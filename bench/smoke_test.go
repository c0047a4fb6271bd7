package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestSmoke runs the harness's main logic in its small configuration and
// checks correctness only (every mirror applied every change; every
// throughput row did work without an error), never timings.
func TestSmoke(t *testing.T) {
	cfg, err := parseFlags([]string{"-smoke", "-dir", t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := run(cfg, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	if len(res.latency) != 3 {
		t.Fatalf("%d latency rows, want 3", len(res.latency))
	}
	for _, r := range res.latency {
		if r.mirrors != 2 || len(r.samples) != cfg.ops {
			t.Errorf("%s: %d mirrors, %d samples; want 2 and %d", r.op, r.mirrors, len(r.samples), cfg.ops)
		}
	}
	if len(res.throughput) != 3*len(cfg.callers) {
		t.Fatalf("%d throughput rows", len(res.throughput))
	}
	for _, r := range res.throughput {
		if r.ops == 0 {
			t.Errorf("%s with %d callers: no operation completed", r.op, r.callers)
		}
	}
	if m := res.memory; m == nil || m.bans != cfg.memBans || m.revoked != cfg.memRevoked {
		t.Errorf("mirror memory row: %+v; want %d bans, %d revoked", m, cfg.memBans, cfg.memRevoked)
	}
	if f := res.fanout; f == nil || f.writes == 0 || f.delivered != f.writes*int64(f.subscribers) || f.cut != 0 {
		t.Errorf("fan-out row: %+v; want every write delivered to every subscriber once", f)
	}
	for _, want := range []string{"machine:", "flags: -smoke", "GOMAXPROCS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
