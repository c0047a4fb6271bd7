package robustness

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Faults counts the faults injected, by kind ("kill-authority",
// "kill-etcd-leader", "partition-replica-etcd", ...). It is safe for
// concurrent use.
type Faults struct {
	mu sync.Mutex
	n  map[string]int
}

// Add counts one fault of kind.
func (f *Faults) Add(kind string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n = map[string]int{}
	}
	f.n[kind]++
}

// Counts returns a copy of the counts.
func (f *Faults) Counts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.n))
	for k, v := range f.n {
		out[k] = v
	}
	return out
}

// Report is what a run prints: `make test` and `make robustness` both.
type Report struct {
	Name            string
	Ops             []Op // as recorded, before Resolve
	Faults          map[string]int
	Lost            []string
	Linearizability Linearizability
	Changes         int // distinct changes in the watch reference
	Logs            int // watch logs checked
	Resumes         int // fresh streams checked by CheckResume
	Violations      []Violation
}

// String formats the report, one figure per line.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "robustness %s:\n", r.Name)
	answered, unknown := CountByKind(r.Ops)
	total, totalUnknown := 0, 0
	b.WriteString("  operations:")
	for _, k := range Kinds {
		fmt.Fprintf(&b, " %s=%d", k, answered[k]+unknown[k])
		if unknown[k] > 0 {
			fmt.Fprintf(&b, "(%d unknown)", unknown[k])
		}
		total += answered[k] + unknown[k]
		totalUnknown += unknown[k]
	}
	fmt.Fprintf(&b, " total=%d (%d without an answer)\n", total, totalUnknown)
	kinds := make([]string, 0, len(r.Faults))
	nf := 0
	for k, n := range r.Faults {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
		nf += n
	}
	slices.Sort(kinds)
	fmt.Fprintf(&b, "  faults: %s total=%d\n", strings.Join(kinds, " "), nf)
	fmt.Fprintf(&b, "  acknowledged writes lost: %d\n", len(r.Lost))
	fmt.Fprintf(&b, "  linearizability: %s (%d operations checked, %d users)\n",
		strings.ToLower(string(r.Linearizability.Result)), r.Linearizability.Ops, r.Linearizability.Users)
	fmt.Fprintf(&b, "  watch guarantee violations: %d (%d logs, %d changes, %d resumes checked)\n",
		len(r.Violations), r.Logs, r.Changes, r.Resumes)
	return b.String()
}

// OK reports whether the run passed every check.
func (r Report) OK() bool {
	return len(r.Lost) == 0 && r.Linearizability.Result == "Ok" && len(r.Violations) == 0
}
