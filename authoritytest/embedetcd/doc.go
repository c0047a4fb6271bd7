// Package embedetcd starts a real etcd server in the test's process, for
// an authoritytest.Authority kept in etcd (Options.EtcdEndpoints), such as
// the replicas of authoritytest.StartReplicas:
//
//	rs := authoritytest.StartReplicas(t, 3, authoritytest.Options{EtcdEndpoints: embedetcd.Start(t)})
//
// It is a package of its own so that the users of authoritytest who do
// not ask for etcd do not pay for its server: etcd's server packages are
// some 140 more packages to build and link into every test binary, and
// they register their Prometheus collectors in the default registry when
// they are loaded, which a test of a service's own /metrics would see.
//
// It may import internal/storage/etcd/etcdtest, testing and the standard
// library. Production code must not import it.
package embedetcd
