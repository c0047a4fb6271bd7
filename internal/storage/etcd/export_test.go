package etcd

// SetHubSize changes how many changes the hub of stores opened afterwards
// keep, for the test's duration.
func SetHubSize(n int) (restore func()) {
	old := hubSize
	hubSize = n
	return func() { hubSize = old }
}

// SetMigrateBatchRead makes the schema migration call f after reading
// each batch of refresh tokens and before committing it, for the test's
// duration.
func SetMigrateBatchRead(f func()) (restore func()) {
	migrateBatchRead = f
	return func() { migrateBatchRead = nil }
}
