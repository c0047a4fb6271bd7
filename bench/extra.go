package main

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// memoryRow is the heap one mirror holds for a state of bans and revoked
// sessions, loaded through the authority's Watch.
type memoryRow struct {
	bans, revoked int // what the mirror reported holding
	heapInuse     int64
	heapAlloc     int64
	load          time.Duration // the writes that built the state
	sync          time.Duration // start of the mirror until its first snapshot
}

// fanoutRow is events delivered to raw Watch subscribers while a writer
// creates bans.
type fanoutRow struct {
	subscribers int
	writers     int
	writes      int64
	delivered   int64         // events received, summed over subscribers
	writing     time.Duration // how long the writers ran
	drained     time.Duration // start of writing until every subscriber had every event
	cut         int64         // subscribers whose stream ended early
}

// parallel runs f(i) for i in [0, n) on callers goroutines and returns the
// first error.
func parallel(n, callers int, f func(i int) error) error {
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for firstErr.Load() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return *p
	}
	return nil
}

// heap returns HeapInuse and HeapAlloc after a full collection.
func heap() (inuse, alloc int64) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse), int64(ms.HeapAlloc)
}

// mirrorMemory fills a fresh authority with bans active bans and revoked
// revoked sessions, starts one mirror that loads them through Watch, stops
// the mirror and the authority, and measures the heap with the mirror
// (its state) still reachable and again once it is not: the difference is
// the mirror's.
func mirrorMemory(store, dir string, bans, revoked, callers int) (memoryRow, error) {
	a, err := startAuthority(store, dir)
	if err != nil {
		return memoryRow{}, err
	}
	closed := false
	defer func() {
		if !closed {
			a.close()
		}
	}()
	c, err := a.dial()
	if err != nil {
		return memoryRow{}, err
	}
	defer c.Close()
	ctx := context.Background()
	start := time.Now()
	err = parallel(bans, callers, func(i int) error {
		_, err := c.Bans.CreateBan(ctx, &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: fmt.Sprintf("mem-ban-%07d", i)}}, Reason: "bench"})
		return err
	})
	if err != nil {
		return memoryRow{}, fmt.Errorf("CreateBan: %w", err)
	}
	err = parallel(revoked, callers, func(i int) error {
		s, err := c.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{UserId: fmt.Sprintf("mem-rs-%07d", i), ClientIp: "192.0.2.1"})
		if err != nil {
			return err
		}
		_, err = c.Sessions.RevokeSession(ctx, &pb.RevokeSessionRequest{SessionId: s.GetSession().GetSessionId()})
		return err
	})
	if err != nil {
		return memoryRow{}, fmt.Errorf("revoked sessions: %w", err)
	}
	row := memoryRow{load: time.Since(start)}

	mc, err := a.dial()
	if err != nil {
		return row, err
	}
	sctx, scancel := context.WithTimeout(ctx, 2*time.Minute)
	start = time.Now()
	m, stopMirror, err := client.StartMirror(sctx, mc, client.MirrorOptions{Logger: slog.New(slog.DiscardHandler), CacheSize: 1024})
	row.sync = time.Since(start)
	scancel()
	if err == nil {
		stopMirror()
	}
	mc.Close()
	if err != nil {
		return row, err
	}
	st := m.Stats()
	row.bans, row.revoked = st.Bans, st.Revoked
	// Everything else goes before the two measurements.
	c.Close()
	a.close()
	closed = true
	withInuse, withAlloc := heap()
	runtime.KeepAlive(m)
	m = nil
	withoutInuse, withoutAlloc := heap()
	row.heapInuse, row.heapAlloc = withInuse-withoutInuse, withAlloc-withoutAlloc
	return row, nil
}

// fanout opens subs raw Watch streams on a fresh authority (one connection
// each, each loop only receiving and counting), then writers callers create
// bans for d, and measures the events delivered until every subscriber has
// received every ban.
func fanout(store, dir string, subs, writers int, d time.Duration) (fanoutRow, error) {
	row := fanoutRow{subscribers: subs, writers: writers}
	a, err := startAuthority(store, dir)
	if err != nil {
		return row, err
	}
	defer a.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var delivered, cut atomic.Int64
	counts := make([]atomic.Int64, subs) // ban events received per subscriber
	var ready, wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := range subs {
		c, err := a.dial()
		if err != nil {
			return row, err
		}
		defer c.Close()
		stream, err := c.Events.Watch(ctx, &pb.WatchRequest{})
		if err != nil {
			return row, err
		}
		ready.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			for {
				r, err := stream.Recv()
				if first {
					first = false
					ready.Done()
				}
				if err != nil {
					if ctx.Err() == nil {
						cut.Add(1)
					}
					return
				}
				var n int64
				for _, e := range r.GetChange().GetEvents() {
					if e.GetBanCreated() != nil {
						n++
					}
				}
				if n > 0 {
					delivered.Add(n)
					counts[i].Add(n)
				}
			}
		}()
	}
	ready.Wait() // every stream has its snapshot
	if n := cut.Load(); n > 0 {
		return row, fmt.Errorf("%d of %d Watch streams ended before the first write", n, subs)
	}

	w, err := a.dial()
	if err != nil {
		return row, err
	}
	defer w.Close()
	start := time.Now()
	writes, writing, err := closedLoop(writers, d, func(i, n int) error {
		_, err := w.Bans.CreateBan(ctx, &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: fmt.Sprintf("fan-%d-%d", i, n)}}})
		return err
	})
	row.writing = writing
	if err != nil {
		return row, fmt.Errorf("CreateBan: %w", err)
	}
	row.writes = writes
	deadline := time.Now().Add(time.Minute)
	for {
		all := true
		for i := range counts {
			if counts[i].Load() < row.writes {
				all = false
				break
			}
		}
		if all {
			break
		}
		if time.Now().After(deadline) || cut.Load() > 0 {
			row.delivered, row.cut = delivered.Load(), cut.Load()
			return row, fmt.Errorf("after a minute %d of %d events delivered (%d streams cut)", row.delivered, row.writes*int64(subs), row.cut)
		}
		time.Sleep(time.Millisecond)
	}
	row.drained = time.Since(start)
	row.delivered, row.cut = delivered.Load(), cut.Load()
	return row, nil
}
