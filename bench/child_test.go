package main

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// The parent reads back exactly what a child writes: the mirror (offset by
// the child's first mirror), the key (an empty id included) and the time;
// the final revisions; synced once.
func TestChildLinesRoundTrip(t *testing.T) {
	lines := make(chan childLine, 8)
	lines <- childLine{tag: 's'}
	lines <- childLine{tag: 'e', mirror: 1, n: 1700000000123456789, key: eventKey{"ban", "el-2-0"}}
	lines <- childLine{tag: 'e', mirror: 0, n: 42, key: eventKey{kind: "other"}}
	lines <- childLine{tag: 'r', mirror: 0, n: 17}
	lines <- childLine{tag: 'r', mirror: 1, n: 17}
	close(lines)
	var out bytes.Buffer
	if err := writeChildLines(&out, lines); err != nil {
		t.Fatal(err)
	}
	c := &childProc{first: 10, mirrors: 2, synced: make(chan struct{})}
	type got struct {
		mirror int
		k      eventKey
		ns     int64
	}
	var applied []got
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if err := c.line(sc.Text(), func(m int, k eventKey, ns int64) { applied = append(applied, got{m, k, ns}) }); err != nil {
			t.Fatal(err)
		}
	}
	want := []got{{11, eventKey{"ban", "el-2-0"}, 1700000000123456789}, {10, eventKey{kind: "other"}, 42}}
	if len(applied) != 2 || applied[0] != want[0] || applied[1] != want[1] {
		t.Errorf("applied %+v, want %+v", applied, want)
	}
	if len(c.revs) != 2 || c.revs[0] != 17 || c.revs[1] != 17 {
		t.Errorf("revisions %v, want [17 17]", c.revs)
	}
	select {
	case <-c.synced:
	default:
		t.Error("synced line not seen")
	}
	for _, bad := range []string{"synced", "e 2 1 ban x", "e 0 x ban y", "hello"} {
		if err := c.line(bad, func(int, eventKey, int64) {}); err == nil {
			t.Errorf("line %q accepted", bad)
		}
	}
}

// A child without its environment refuses to start rather than run
// mirrors against nothing.
func TestChildNeedsItsEnvironment(t *testing.T) {
	env := map[string]string{childEnv: "2"}
	err := runChild(strings.NewReader(""), &bytes.Buffer{}, func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), childKeyEnv) {
		t.Errorf("runChild without address and key: %v", err)
	}
}
