package authority

// SetRefuseUnknownEarly turns the early refusal of unknown refresh tokens
// on or off (the benchmark measures the refusal both ways in one run) and
// returns a function that restores it.
func SetRefuseUnknownEarly(on bool) (restore func()) {
	old := refuseUnknownEarly
	refuseUnknownEarly = on
	return func() { refuseUnknownEarly = old }
}

// AuditSweepBatch is how many audit records one Update of SweepAudit
// deletes at most.
const AuditSweepBatch = auditSweepBatch

// SetAuditScanLimit sets how many audit records one page reads at most
// and returns a function that restores it.
func SetAuditScanLimit(n int) (restore func()) {
	old := auditScanLimit
	auditScanLimit = n
	return func() { auditScanLimit = old }
}

// SetBanExpiryScanPage sets how many bans one page of AnnounceExpiredBans's
// scan reads and returns a function that restores it.
func SetBanExpiryScanPage(n int) (restore func()) {
	old := banExpiryScanPage
	banExpiryScanPage = n
	return func() { banExpiryScanPage = old }
}
