package main

import (
	"context"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/storage"
)

// coldStartRow is one mirror starting against an authority that holds a
// large ban set: how long until it is synced, split at the moments its
// Watch stream receives the snapshot's first and last parts, and the heap
// the process (authority and mirror) needed meanwhile.
type coldStartRow struct {
	bans, parts int
	connects    int           // Watch streams the mirror opened: 1 unless a stream failed
	firstPart   time.Duration // mirror start until the first part arrived
	lastPart    time.Duration // mirror start until the last part arrived (decoded): transfer, and what the mirror did with the earlier parts
	synced      time.Duration // mirror start until WaitSynced returned
	peakHeap    int64         // peak of live and unswept heap objects above the level before the mirror started
	allocated   int64         // bytes allocated by the process from the mirror's start until synced
	cpu         time.Duration // CPU time (user and system) of the process meanwhile: what a busy machine moves least
}

// coldStart seeds bans bans into a store of its own in dir (straight into
// the store, in large transactions: CreateBan would take minutes), then,
// runs times, starts a fresh authority on it (nothing cached) and one
// mirror, and measures the mirror's first snapshot. profile, if set,
// receives a CPU profile of the runs only (not of the seeding).
func coldStart(store, dir string, bans, runs int, profile string) ([]coldStartRow, time.Duration, error) {
	log := benchLogger()
	st, closeStore, err := openStore(store, dir, log)
	if err != nil {
		return nil, 0, err
	}
	defer closeStore()
	start := time.Now()
	if err := seedBans(st, bans); err != nil {
		return nil, 0, fmt.Errorf("seeding: %w", err)
	}
	seeded := time.Since(start)
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return nil, seeded, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, seeded, err
		}
		defer pprof.StopCPUProfile()
	}
	var rows []coldStartRow
	var key string
	for range runs {
		a, err := serveAuthority(st, func() {}, log) // the store outlives the authorities
		if err != nil {
			return rows, seeded, err
		}
		if key == "" {
			key = a.key
		}
		a.key = key // the bootstrap key is created, and returned, once
		row, err := coldStartOnce(a)
		a.close()
		if err != nil {
			return rows, seeded, err
		}
		rows = append(rows, row)
	}
	return rows, seeded, nil
}

// coldStartOnce starts one mirror on a and measures its first snapshot.
func coldStartOnce(a *authorityEnv) (coldStartRow, error) {
	var row coldStartRow
	var firstPart, lastPart atomic.Int64 // ns since start
	var parts atomic.Int64
	var start time.Time
	// The parts are timed as the mirror receives them, before it applies
	// each.
	mc, err := a.dial(authoritytest.BeforeWatchMessage(func(r *pb.WatchResponse) {
		snap := r.GetSnapshot()
		if snap == nil {
			return
		}
		at := int64(time.Since(start))
		if parts.Add(1) == 1 {
			firstPart.Store(at)
		}
		if !snap.GetMore() {
			lastPart.CompareAndSwap(0, at)
		}
	}))
	if err != nil {
		return row, err
	}
	defer mc.Close()
	runtime.GC()
	base := heapObjects()
	allocs0 := heapAllocs()
	cpu0 := processCPU()
	// No progress reports: the harness's authority would end a stream that
	// reports none for 3 checkpoint intervals, which a snapshot longer than
	// that takes; the row measures one snapshot, not retries (connects).
	peak := sampleHeap(base)
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Minute) // a hang guard, not a goal
	defer scancel()
	start = time.Now()
	m, stop, err := client.StartMirror(sctx, mc, client.MirrorOptions{Logger: benchLogger(), CacheSize: 1024, DisableProgress: true})
	row.synced = time.Since(start)
	row.allocated = int64(heapAllocs() - allocs0)
	row.cpu = processCPU() - cpu0
	row.peakHeap = peak()
	if err != nil {
		return row, err
	}
	stop()
	st := m.Stats()
	row.bans, row.parts, row.connects = st.Bans, int(parts.Load()), int(st.Connects)
	row.firstPart, row.lastPart = time.Duration(firstPart.Load()), time.Duration(lastPart.Load())
	return row, nil
}

// processCPU is the CPU time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var heapSamples = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/allocs:bytes"}}

// heapObjects is the bytes of heap objects, live or not yet swept.
func heapObjects() uint64 {
	s := heapSamples[:1:1]
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// heapAllocs is the bytes allocated since the process started.
func heapAllocs() uint64 {
	s := heapSamples[1:2:2]
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// sampleHeap samples heapObjects every millisecond until the returned
// function is called, which returns the peak above base.
func sampleHeap(base uint64) func() int64 {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var peak uint64
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if h := heapObjects(); h > peak {
				peak = h
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(stop)
		wg.Wait()
		return int64(peak) - int64(base)
	}
}

// benchIDs is the authority's ID text (internal/authority/ids.go), so that
// seeded bans look like created ones to the mirror (compact IDs).
var benchIDs = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// seedBans writes n active user bans, as CreateBan would store them, in
// transactions as large as the backend takes.
func seedBans(st storage.Store, n int) error {
	now := time.Now().UTC()
	batch := 20000
	for i := 0; i < n; {
		end := min(n, i+batch)
		_, err := st.Update(context.Background(), func(tx storage.Tx) error {
			for j := i; j < end; j++ {
				var id [16]byte
				binary.BigEndian.PutUint64(id[:8], uint64(now.UnixMilli())<<16)
				binary.BigEndian.PutUint64(id[8:], uint64(j))
				err := tx.PutBan(storage.Ban{ID: "ban_" + benchIDs.EncodeToString(id[:]), TenantID: "public",
					Kind: storage.SubjectUser, Value: fmt.Sprintf("cold-ban-%07d", j), Reason: "bench",
					CreatedBy: "bootstrap-admin", CreatorAddr: "127.0.0.1:40000", CreateTime: now})
				if err != nil {
					return err
				}
			}
			return nil
		})
		if errors.Is(err, storage.ErrTxnTooLarge) && batch > 1 {
			batch /= 2 // etcd: at most --max-txn-ops writes a transaction
			continue
		}
		if err != nil {
			return err
		}
		i = end
	}
	return nil
}

// runColdStart runs and prints the cold-start row.
func runColdStart(cfg config, dir string, runs int, out io.Writer) ([]coldStartRow, error) {
	rows, seeded, err := coldStart(cfg.store, filepath.Join(dir, "coldstart"), cfg.coldStartBans, runs, cfg.coldStartProfile)
	if err != nil {
		return nil, fmt.Errorf("cold start: %w", err)
	}
	r := medianRun(rows, func(r coldStartRow) float64 { return float64(r.synced) })
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	h, rule := runsHeader(runs, "synced (CPU)")
	fmt.Fprintf(out, "| cold start (one mirror, a fresh authority) | bans | streams | parts | first part | last part | synced | CPU | peak heap | allocated |%s\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |%s\n", h, rule)
	each := eachRun(rows, func(r coldStartRow) string { return ms(r.synced) + " (CPU " + ms(r.cpu) + ")" })
	note := ""
	if runs > 1 {
		note = "; the row is the run with the median synced time"
	}
	fmt.Fprintf(out, "| mirror start until | %d | %d | %d | %s | %s | %s | %s | %.0f MiB | %.0f MiB |%s\n", r.bans, r.connects, r.parts,
		ms(r.firstPart), ms(r.lastPart), ms(r.synced), ms(r.cpu), float64(r.peakHeap)/(1<<20), float64(r.allocated)/(1<<20), runsCell(each))
	fmt.Fprintf(out, "(bans seeded straight into the store in %v; first and last part: when the mirror had each (the authority sends each part as soon as it is encoded, so the last part is also the authority's reading and encoding); CPU, peak heap and allocated: the whole process, authority and mirror%s)\n\n",
		ms(seeded), note)
	return rows, nil
}
