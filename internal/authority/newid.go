package authority

import "time"

// NewID returns a new time-ordered ID with prefix, from the same monotonic
// source as the authority's own IDs: packages beside the domain that write
// their own records with audit records (internal/transmitter) keep the
// audit trail in one time order.
func NewID(prefix string, now time.Time) string { return newID(prefix, now) }
