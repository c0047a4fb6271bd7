package client

import (
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"

	"google.golang.org/grpc/resolver"
)

// replicaScheme is the scheme of the target Dial builds for a list of
// replicas. Its resolver is given to that one connection with
// grpc.WithResolvers, never registered globally.
const replicaScheme = "portcullis-replicas"

// replicaResolver is the resolver.Builder of a list of replica addresses.
type replicaResolver struct {
	addrs []resolver.Address
}

// newReplicaResolver parses "host:port,host:port,...".
func newReplicaResolver(target string) (*replicaResolver, error) {
	b := &replicaResolver{}
	for part := range strings.SplitSeq(target, ",") {
		addr := strings.TrimSpace(part)
		if _, _, err := net.SplitHostPort(addr); err != nil || strings.Contains(addr, "/") {
			return nil, fmt.Errorf("client: dial %s: %q is not a host:port address (a list of replicas takes host:port addresses, without a scheme)", target, addr)
		}
		if !slices.ContainsFunc(b.addrs, func(a resolver.Address) bool { return a.Addr == addr }) {
			// ServerName: with TLS each replica is verified against its own
			// host, as a single-address target would be.
			b.addrs = append(b.addrs, resolver.Address{Addr: addr, ServerName: addr})
		}
	}
	return b, nil
}

func (b *replicaResolver) Scheme() string { return replicaScheme }

// String is the list, normalized ("host:port,host:port").
func (b *replicaResolver) String() string {
	parts := make([]string, len(b.addrs))
	for i, a := range b.addrs {
		parts[i] = a.Addr
	}
	return strings.Join(parts, ",")
}

// Build is called when the connection starts (and again if it leaves
// idleness); the resolver pushes the addresses at once.
func (b *replicaResolver) Build(_ resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	r := &shuffler{cc: cc, addrs: b.addrs}
	r.ResolveNow(resolver.ResolveNowOptions{})
	return r, nil
}

// shuffler pushes the addresses in a new random order whenever gRPC asks
// for a resolution: it does when a connection is lost and when an attempt
// fails. pick_first starts each pass from the first address, so without
// the shuffle every reconnection would try the same (maybe dead) replica
// first. gRPC calls ResolveNow from one goroutine at a time.
type shuffler struct {
	cc    resolver.ClientConn
	addrs []resolver.Address // never modified
}

func (r *shuffler) ResolveNow(resolver.ResolveNowOptions) {
	addrs := slices.Clone(r.addrs)
	rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
	r.cc.UpdateState(resolver.State{Addresses: addrs})
}

func (r *shuffler) Close() {}
