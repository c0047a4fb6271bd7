package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// sustainedLoad is the -sustained-rate/-sustained-duration of the
// enforcement rows.
type sustainedLoad struct {
	rate     int // bans per second (0: no sustained row)
	duration time.Duration
}

// sustained creates bans at sl.rate for sl.duration, each from its own
// goroutine at its scheduled time, and measures each one's ack -> every
// mirror applied with measure (the one-at-a-time rows' measure).
func sustained(ctx context.Context, c *client.Client, mirrors int, sl sustainedLoad,
	measure func(eventKey, func() error) (time.Duration, error)) (latencyRow, error) {
	row := latencyRow{op: fmt.Sprintf("CreateBan (user), %d/s sustained for %v", sl.rate, sl.duration), mirrors: mirrors}
	total := max(1, int(float64(sl.rate)*sl.duration.Seconds()))
	interval := time.Second / time.Duration(sl.rate)
	samples := make([]time.Duration, total)
	errs := make(chan error, total)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range total {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d) // pacing the load, not waiting for a result
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := fmt.Sprintf("sl-%d-%d-%d", mirrors, start.UnixNano(), i)
			d, err := measure(eventKey{"ban", user}, func() error {
				_, err := c.Bans.CreateBan(ctx, &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: user}}})
				return err
			})
			samples[i] = d
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	row.elapsed = time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return row, fmt.Errorf("sustained CreateBan: %w", err)
	}
	row.samples = samples
	return row, nil
}
