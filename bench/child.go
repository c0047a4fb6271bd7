package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// The hidden child mode of -procs: the bench binary re-executes itself
// with these variables set (procs.go). The API key travels in the
// environment, never on a command line or in the output.
const (
	childEnv          = "PORTCULLIS_BENCH_CHILD" // mirrors to run; set only in a child
	childAuthorityEnv = "PORTCULLIS_BENCH_AUTHORITY"
	childKeyEnv       = "PORTCULLIS_BENCH_API_KEY"
	childProgressEnv  = "PORTCULLIS_BENCH_PROGRESS" // "on" or "off"
)

// isChild reports whether this process is a -procs child.
func isChild() bool { return os.Getenv(childEnv) != "" }

// childMain runs the child mode and returns the exit code.
func childMain() int {
	if err := runChild(os.Stdin, os.Stdout, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		return 1
	}
	return 0
}

// childLine is one line of a child's output, in the order written:
//
//	synced                          every mirror of the child has its first snapshot
//	e <mirror> <unix ns> <kind> <id>  mirror applied an event (eventKey) at that time
//	rev <mirror> <revision>         at exit: the revision the mirror ended at
type childLine struct {
	tag    byte // 's', 'e' or 'r'
	mirror int
	n      int64 // the time of an 'e', the revision of an 'r'
	key    eventKey
}

// runChild starts the mirrors the environment asks for, writes the lines
// above to out, and exits when in ends (the parent closed it, or died).
//
// The OnEvent hook takes the time and hands a small value to a channel;
// one goroutine formats the lines into a buffered writer and flushes
// whenever the channel is empty. The timestamp is taken in the hook, so
// when the line reaches the parent does not change the measured latency;
// what the writer can distort is CPU: it competes with the mirrors'
// apply goroutines for the cores. It flushes once per burst (one event
// applied by all the child's mirrors is one write(2) of a few kB, not
// one per mirror), which keeps that to a few microseconds per change.
// The channel is large enough never to fill in this harness (one
// operation at a time, a few events per mirror); if it did, the hook
// would block and the latency would include the wait, not lose lines.
func runChild(in io.Reader, out io.Writer, getenv func(string) string) error {
	n, err := strconv.Atoi(getenv(childEnv))
	if err != nil || n <= 0 {
		return fmt.Errorf("%s=%q: want a positive mirror count", childEnv, getenv(childEnv))
	}
	addr, key := getenv(childAuthorityEnv), getenv(childKeyEnv)
	if addr == "" || key == "" {
		return fmt.Errorf("%s and %s must be set", childAuthorityEnv, childKeyEnv)
	}
	progress := getenv(childProgressEnv) != "off"

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		io.Copy(io.Discard, in) // returns when the parent closes our stdin or exits
		cancel()
	}()

	lines := make(chan childLine, 1<<16)
	written := make(chan error, 1)
	go func() { written <- writeChildLines(out, lines) }()

	stop, err := runMirrors(ctx, addr, key, n, progress, func(i int, e *pb.Event) {
		ns := time.Now().UnixNano()
		lines <- childLine{tag: 'e', mirror: i, n: ns, key: keyOf(e)}
	})
	if err != nil {
		close(lines)
		<-written
		return err
	}
	lines <- childLine{tag: 's'}
	<-ctx.Done()
	for i, rev := range stop() { // the hooks have returned: no more sends
		lines <- childLine{tag: 'r', mirror: i, n: rev}
	}
	close(lines)
	return <-written
}

// writeChildLines formats lines into a buffered out until lines is
// closed, flushing when it has nothing more to write.
func writeChildLines(out io.Writer, lines <-chan childLine) error {
	w := bufio.NewWriterSize(out, 64<<10)
	var buf []byte
	var werr error
	for l := range lines {
		buf = buf[:0]
		switch l.tag {
		case 's':
			buf = append(buf, "synced"...)
		case 'e':
			buf = append(buf, "e "...)
			buf = strconv.AppendInt(buf, int64(l.mirror), 10)
			buf = append(buf, ' ')
			buf = strconv.AppendInt(buf, l.n, 10)
			buf = append(buf, ' ')
			buf = append(buf, l.key.kind...)
			buf = append(buf, ' ')
			buf = append(buf, l.key.id...)
		case 'r':
			buf = append(buf, "rev "...)
			buf = strconv.AppendInt(buf, int64(l.mirror), 10)
			buf = append(buf, ' ')
			buf = strconv.AppendInt(buf, l.n, 10)
		}
		buf = append(buf, '\n')
		if werr == nil {
			_, werr = w.Write(buf)
		}
		if len(lines) == 0 && werr == nil {
			werr = w.Flush()
		}
	}
	if werr != nil {
		return werr
	}
	return w.Flush()
}
