package client

import (
	"strings"
	"unsafe"
)

// arenaChunk is the size of one block of an arena: large enough that a
// 100k-ban snapshot takes a few hundred, small enough that one surviving
// key does not pin much.
const arenaChunk = 64 << 10

// arena copies the keys of a snapshot being built (user and device IDs,
// session IDs) into shared blocks. Decoded from the Watch stream, each key
// is its own small allocation between the message's other fields, which
// are garbage once the state is built; kept as they are, the keys would
// hold those spans in use after GC (BenchmarkMirrorMemory's inuse-B/ban;
// BENCHMARKS.md, "Mirror memory"). Bytes written to a block are never
// changed, so the strings made from them are immutable as Go requires; a
// block lives while any of its keys does (at most the size of the
// snapshot's keys).
type arena struct {
	buf []byte
}

// copy returns s stored in the arena.
func (a *arena) copy(s string) string {
	switch {
	case s == "":
		return ""
	case len(s) > arenaChunk/16:
		return strings.Clone(s)
	case cap(a.buf)-len(a.buf) < len(s):
		a.buf = make([]byte, 0, arenaChunk)
	}
	start := len(a.buf)
	a.buf = append(a.buf, s...)
	return unsafe.String(&a.buf[start], len(s))
}
