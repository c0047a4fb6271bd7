package client

import (
	"fmt"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// snapshotParts gathers the parts of a snapshot (Snapshot.more) until the
// last one, so that the mirror builds its state once, from the whole
// snapshot: a partial one is never published, and a stream that ends
// mid-snapshot leaves the state as it was. It is used under writeMu.
type snapshotParts struct {
	storeID string
	rev     int64
	n       int          // parts gathered; 0: no snapshot in progress
	acc     *pb.Snapshot // the parts' lists appended (pointers only: the elements are not copied)
}

// add takes the next snapshot part and returns the whole snapshot and its
// number of parts once resp is its last part (nil before). A part of
// another revision or store than the first is a protocol error; the parts
// gathered are dropped.
func (p *snapshotParts) add(resp *pb.WatchResponse) (*pb.Snapshot, int, error) {
	part := resp.GetSnapshot()
	if p.n == 0 {
		if !part.GetMore() {
			return part, 1, nil // a snapshot in one part, as most are
		}
		p.storeID, p.rev, p.acc = resp.GetStoreId(), resp.GetRevision(), &pb.Snapshot{}
	} else if resp.GetStoreId() != p.storeID || resp.GetRevision() != p.rev {
		err := fmt.Errorf("client: snapshot part %d at %s/%d, its first part at %s/%d",
			p.n+1, resp.GetStoreId(), resp.GetRevision(), p.storeID, p.rev)
		p.drop()
		return nil, 0, err
	}
	p.n++
	p.acc.Bans = append(p.acc.Bans, part.GetBans()...)
	p.acc.RevokedSessions = append(p.acc.RevokedSessions, part.GetRevokedSessions()...)
	p.acc.Keys = append(p.acc.Keys, part.GetKeys()...)
	if part.GetMore() {
		return nil, 0, nil
	}
	whole, n := p.acc, p.n
	p.drop()
	return whole, n, nil
}

// pending reports whether a snapshot is partly gathered.
func (p *snapshotParts) pending() bool { return p.n > 0 }

// drop forgets the parts gathered (a stream that ended mid-snapshot).
func (p *snapshotParts) drop() { *p = snapshotParts{} }
