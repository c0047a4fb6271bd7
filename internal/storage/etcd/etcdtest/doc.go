// Package etcdtest runs real etcd servers in-process (go.etcd.io/etcd's
// embed package) on loopback ports chosen at run time, for the tests of
// the etcd backend and of everything built on it. Nothing is faked and
// nothing is skipped for want of an external server.
//
// It may import internal/storage/etcd, go.etcd.io/etcd and the standard
// library; only tests import it, and the benchmark harness (StartDir).
package etcdtest
