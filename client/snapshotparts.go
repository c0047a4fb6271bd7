package client

import (
	"fmt"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// snapshotParts gathers the parts of a snapshot (Snapshot.more) until the
// last one. Each part is added to the new state as it arrives
// (snapshotBuilder), so that the last part does not start all the work
// and a part's messages are garbage once it is added; the state is built
// aside and returned whole with the last part: a partial one is never
// published, and a stream that ends mid-snapshot leaves the state as it
// was. It is used under writeMu.
type snapshotParts struct {
	storeID string
	rev     int64
	n       int              // parts added; 0: no snapshot in progress
	b       *snapshotBuilder // the state being built
}

// add takes the next snapshot part and returns the new state and the
// snapshot's number of parts once resp is its last part (nil before).
// prevKeyGen is the key generation of the state it replaces. A part of
// another revision or store than the first is a protocol error; the state
// being built is dropped.
func (p *snapshotParts) add(resp *pb.WatchResponse, prevKeyGen uint64) (*state, int, error) {
	part := resp.GetSnapshot()
	if p.n == 0 {
		p.storeID, p.rev, p.b = resp.GetStoreId(), resp.GetRevision(), newSnapshotBuilder(resp.GetStoreId(), resp.GetRevision())
	} else if resp.GetStoreId() != p.storeID || resp.GetRevision() != p.rev {
		err := fmt.Errorf("client: snapshot part %d at %s/%d, its first part at %s/%d",
			p.n+1, resp.GetStoreId(), resp.GetRevision(), p.storeID, p.rev)
		p.drop()
		return nil, 0, err
	}
	p.n++
	p.b.addPart(part)
	if part.GetMore() {
		return nil, 0, nil
	}
	next, n := p.b.finish(prevKeyGen), p.n
	p.drop()
	return next, n, nil
}

// pending reports whether a snapshot is partly gathered.
func (p *snapshotParts) pending() bool { return p.n > 0 }

// drop forgets the parts gathered (a stream that ended mid-snapshot).
func (p *snapshotParts) drop() { *p = snapshotParts{} }
