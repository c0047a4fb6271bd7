package client

import (
	"fmt"
	"sync/atomic"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// partQueue is how many received parts may wait for the builder: the
// stream keeps receiving while the state is built (a stream that must stay
// up until the state is built is at the mercy of the authority's progress
// timeout), and memory stays bounded when the builder is the slower.
const partQueue = 32

// snapshotParts takes the parts of a snapshot (Snapshot.more) until the
// last one. Each part is handed to a goroutine that adds it to the new
// state (snapshotBuilder) while the next parts arrive, so that the last
// part does not start all the work and a part's messages are garbage once
// added; the state is built aside and returned whole with the last part: a
// partial one is never published, and a stream that ends mid-snapshot
// leaves the state as it was. It is used under writeMu.
type snapshotParts struct {
	storeID string
	rev     int64
	n       int // parts taken; 0: no snapshot in progress
	b       *partBuilder
}

// part is one snapshot part for the builder: its message and, when the
// watch codec read them apart, its bans.
type part struct {
	snap *pb.Snapshot
	bans []wireBan
}

// partBuilder is the goroutine building one snapshot's state.
type partBuilder struct {
	queue     chan part
	done      chan *snapshotBuilder // the builder, once every part is added
	abandoned atomic.Bool           // the stream ended mid-snapshot: skip the rest
}

func startPartBuilder(storeID string, rev int64) *partBuilder {
	pbd := &partBuilder{queue: make(chan part, partQueue), done: make(chan *snapshotBuilder, 1)}
	go func() {
		sb := newSnapshotBuilder(storeID, rev)
		for part := range pbd.queue {
			if !pbd.abandoned.Load() {
				sb.addPart(part.snap, part.bans)
			}
		}
		pbd.done <- sb
	}()
	return pbd
}

// add takes the next snapshot part, with its bans when the watch codec
// read them apart (watchCodec.take), and returns the new state and the
// snapshot's number of parts once resp is its last part (nil before).
// prevKeyGen is the key generation of the state it replaces. A part of
// another revision or store than the first is a protocol error; the state
// being built is dropped.
func (p *snapshotParts) add(resp *pb.WatchResponse, bans []wireBan, prevKeyGen uint64) (*state, int, error) {
	snap := resp.GetSnapshot()
	if p.n == 0 {
		p.storeID, p.rev, p.b = resp.GetStoreId(), resp.GetRevision(), startPartBuilder(resp.GetStoreId(), resp.GetRevision())
	} else if resp.GetStoreId() != p.storeID || resp.GetRevision() != p.rev {
		err := fmt.Errorf("client: snapshot part %d at %s/%d, its first part at %s/%d",
			p.n+1, resp.GetStoreId(), resp.GetRevision(), p.storeID, p.rev)
		p.drop()
		return nil, 0, err
	}
	p.n++
	p.b.queue <- part{snap: snap, bans: bans}
	if snap.GetMore() {
		return nil, 0, nil
	}
	close(p.b.queue)
	sb := <-p.b.done
	next, n := sb.finish(prevKeyGen), p.n
	*p = snapshotParts{}
	return next, n, nil
}

// pending reports whether a snapshot is partly gathered.
func (p *snapshotParts) pending() bool { return p.n > 0 }

// drop forgets the parts gathered (a stream that ended mid-snapshot); the
// builder goroutine skips what is queued and ends.
func (p *snapshotParts) drop() {
	if p.b != nil {
		p.b.abandoned.Store(true)
		close(p.b.queue)
	}
	*p = snapshotParts{}
}
