package receiver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/portcullis-dev/portcullis/ssf"
)

// fakeApply records the runs the sequencer hands over and applies them as
// applyRun does: a jti in fail gets that error (once); a refusal applies
// nothing of that SET alone, any other error nothing of the rest of the
// run.
type fakeApply struct {
	mu   sync.Mutex
	runs [][]string // the jtis handed over
	done []string   // the jtis applied
	fail map[string]error
}

func (f *fakeApply) apply(_ context.Context, run []*item) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var jtis []string
	var stop error
	for _, it := range run {
		jtis = append(jtis, it.set.JTI)
		switch err := f.fail[it.set.JTI]; {
		case stop != nil:
			it.err = stop
		case err != nil:
			delete(f.fail, it.set.JTI)
			it.err = err
			if !isRefusal(err) {
				stop = err
			}
		default:
			f.done = append(f.done, it.set.JTI)
		}
	}
	f.runs = append(f.runs, jtis)
}

func (f *fakeApply) applied() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.done)
}

func setItem(jti, prev string) *item {
	return &item{set: ssf.SET{JTI: jti, PrevJTI: prev}, done: make(chan struct{})}
}

// submitAll submits each item in its own goroutine (as concurrent pushes)
// and returns their outcomes by jti once all are known.
func submitAll(s *sequencer, items ...*item) func() map[string]error {
	var mu sync.Mutex
	out := map[string]error{}
	var wg sync.WaitGroup
	for _, it := range items {
		wg.Go(func() {
			err := s.submit(context.Background(), it)
			mu.Lock()
			out[it.set.JTI] = err
			mu.Unlock()
		})
	}
	return func() map[string]error { wg.Wait(); return out }
}

// TestSequencerOrdersByPredecessor: SETs that arrive before their
// predecessor wait for it, and then go in the chain's order, in one run.
func TestSequencerOrdersByPredecessor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeApply{}
		s := newSequencer(time.Minute, f.apply, func(context.Context, ...string) bool { return false })
		late := submitAll(s, setItem("s4", "s3"), setItem("s3", "s2"), setItem("s2", "s1"))
		synctest.Wait() // all three wait for their predecessors
		if got := f.applied(); len(got) != 0 {
			t.Fatalf("applied %v before s1 came", got)
		}
		first := submitAll(s, setItem("s1", ""))
		for jti, err := range first() {
			if err != nil {
				t.Fatalf("%s: %v", jti, err)
			}
		}
		for jti, err := range late() {
			if err != nil {
				t.Fatalf("%s: %v", jti, err)
			}
		}
		if got, want := f.applied(), []string{"s1", "s2", "s3", "s4"}; !slices.Equal(got, want) {
			t.Fatalf("applied %v, want %v", got, want)
		}
		if len(f.runs) != 1 {
			t.Fatalf("runs %v, want the chain in one run", f.runs)
		}
	})
}

// TestSequencerHoldTimeout: a SET whose predecessor does not come is
// refused as retryable after the hold time, and nothing of it is applied.
func TestSequencerHoldTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeApply{}
		s := newSequencer(3*time.Second, f.apply, func(context.Context, ...string) bool { return false })
		start := time.Now()
		err := s.submit(context.Background(), setItem("s2", "s1"))
		if !errors.Is(err, ErrSETPredecessorMissing) {
			t.Fatalf("submit = %v, want ErrSETPredecessorMissing", err)
		}
		if waited := time.Since(start); waited != 3*time.Second {
			t.Fatalf("answered after %s, want the hold time", waited)
		}
		if got := f.applied(); len(got) != 0 {
			t.Fatalf("applied %v", got)
		}
		if len(s.waiting) != 0 || s.nwait != 0 {
			t.Fatalf("still waiting: %v (%d)", s.waiting, s.nwait)
		}
	})
}

// TestSequencerFailureStopsTheChain: when a SET fails for a reason of the
// receiver's own, those after it are not applied before it; once it is
// sent again (as the first of the transmitter's window, with no
// predecessor) the chain goes on.
func TestSequencerFailureStopsTheChain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		storeDown := errors.New("store unavailable")
		f := &fakeApply{fail: map[string]error{"s1": storeDown}}
		s := newSequencer(3*time.Second, f.apply, func(context.Context, ...string) bool { return false })
		late := submitAll(s, setItem("s2", "s1"))
		synctest.Wait()
		if err := s.submit(context.Background(), setItem("s1", "")); !errors.Is(err, storeDown) {
			t.Fatalf("s1: %v, want the store's error", err)
		}
		if err := late()["s2"]; err == nil {
			t.Fatal("s2 applied after its predecessor failed")
		}
		if got := f.applied(); len(got) != 0 {
			t.Fatalf("applied %v, want nothing", got)
		}
		for _, it := range []*item{setItem("s1", ""), setItem("s2", "s1")} {
			if err := s.submit(context.Background(), it); err != nil {
				t.Fatalf("%s again: %v", it.set.JTI, err)
			}
		}
		if got := f.applied(); !slices.Equal(got, []string{"s1", "s2"}) {
			t.Fatalf("applied %v, want s1 then s2", got)
		}
	})
}

// TestSequencerKnownPredecessor: a predecessor the store recorded (applied
// before a restart) or a SET applied itself (a redelivery) does not wait.
func TestSequencerKnownPredecessor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeApply{}
		stored := map[string]bool{"s1": true, "s9": true}
		s := newSequencer(time.Minute, f.apply, func(_ context.Context, jtis ...string) bool {
			return slices.ContainsFunc(jtis, func(j string) bool { return stored[j] })
		})
		start := time.Now()
		if err := s.submit(context.Background(), setItem("s2", "s1")); err != nil {
			t.Fatal(err)
		}
		if err := s.submit(context.Background(), setItem("s9", "s8")); err != nil {
			t.Fatal(err)
		}
		if time.Since(start) != 0 {
			t.Fatalf("waited %s", time.Since(start))
		}
		if got := f.applied(); !slices.Equal(got, []string{"s2", "s9"}) {
			t.Fatalf("applied %v", got)
		}
	})
}

// TestSequencerRefusalLetsTheChainGo: a SET refused for itself (it will
// never apply) does not hold up those after it.
func TestSequencerRefusalLetsTheChainGo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeApply{fail: map[string]error{"s1": ErrSETInvalid}}
		s := newSequencer(time.Minute, f.apply, func(context.Context, ...string) bool { return false })
		late := submitAll(s, setItem("s2", "s1"))
		synctest.Wait()
		if err := s.submit(context.Background(), setItem("s1", "")); !errors.Is(err, ErrSETInvalid) {
			t.Fatalf("s1: %v", err)
		}
		if err := late()["s2"]; err != nil {
			t.Fatalf("s2: %v", err)
		}
	})
}

// TestSequencerBoundsWaiting: past maxWaiting SETs waiting for their
// predecessors, another is refused as retryable at once; the bound frees
// as they go.
func TestSequencerBoundsWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeApply{}
		s := newSequencer(time.Minute, f.apply, func(context.Context, ...string) bool { return false })
		var items []*item
		for i := range maxWaiting {
			items = append(items, setItem(fmt.Sprint("w", i+1), fmt.Sprint("w", i)))
		}
		waiting := submitAll(s, items...)
		synctest.Wait()
		start := time.Now()
		if err := s.submit(context.Background(), setItem("x2", "x1")); !errors.Is(err, ErrSETPredecessorMissing) || time.Since(start) != 0 {
			t.Fatalf("one more: %v after %s, want ErrSETPredecessorMissing at once", err, time.Since(start))
		}
		if err := s.submit(context.Background(), setItem("w0", "")); err != nil {
			t.Fatal(err)
		}
		for jti, err := range waiting() {
			if err != nil {
				t.Fatalf("%s: %v", jti, err)
			}
		}
		got := f.applied()
		if len(got) != maxWaiting+1 {
			t.Fatalf("applied %d SETs, want %d", len(got), maxWaiting+1)
		}
		for i, jti := range got {
			if jti != fmt.Sprint("w", i) {
				t.Fatalf("applied %s at %d, want w0..w%d in order", jti, i, maxWaiting)
			}
		}
		if s.nwait != 0 {
			t.Fatalf("%d still counted as waiting", s.nwait)
		}
	})
}
