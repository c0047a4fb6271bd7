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
