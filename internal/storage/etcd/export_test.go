package etcd

// SetHubSize changes how many changes the hub of stores opened afterwards
// keep, for the test's duration.
func SetHubSize(n int) (restore func()) {
	old := hubSize
	hubSize = n
	return func() { hubSize = old }
}
