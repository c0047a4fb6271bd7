package client

import (
	"errors"
	"sync/atomic"
)

// CheckResult is how a Check ended, for metrics.
type CheckResult int

// The results of Check, in CheckCounts order.
const (
	CheckAllowed        CheckResult = iota // the token is valid and nothing refuses it
	CheckStale                             // ErrMirrorStale (not synced, or stale and not fail-open)
	CheckTokenInvalid                      // ErrTokenInvalid
	CheckTokenExpired                      // ErrTokenExpired
	CheckBanned                            // a full ban: ErrUserBanned, ErrDeviceBanned, ErrIPBanned
	CheckSessionRevoked                    // ErrSessionRevoked
	CheckRestricted                        // ErrCapabilityRestricted
	numCheckResults
)

var checkResultNames = [numCheckResults]string{
	"allowed", "stale", "token_invalid", "token_expired", "banned", "session_revoked", "capability_restricted",
}

// String is the result's metric label ("allowed", "banned", ...).
func (r CheckResult) String() string {
	if r < 0 || r >= numCheckResults {
		return "unknown"
	}
	return checkResultNames[r]
}

// CheckResults lists every result, in order.
func CheckResults() []CheckResult {
	out := make([]CheckResult, numCheckResults)
	for i := range out {
		out[i] = CheckResult(i)
	}
	return out
}

// CheckCounts counts the checks of a mirror by result, indexed by
// CheckResult.
type CheckCounts [numCheckResults]uint64

// checkShards spreads the counters over cache lines, so that checks on
// several cores do not all contend for one line; a check picks its shard
// by its token's hash.
const checkShards = 8

type checkCounters struct {
	shards [checkShards]struct {
		n [numCheckResults]atomic.Uint64
		_ [64 - (numCheckResults*8)%64]byte
	}
}

func (c *checkCounters) add(r CheckResult, h uint64) {
	c.shards[h%checkShards].n[r].Add(1)
}

func (c *checkCounters) load() CheckCounts {
	var out CheckCounts
	for i := range c.shards {
		for r := range out {
			out[r] += c.shards[i].n[r].Load()
		}
	}
	return out
}

// resultOf classifies the error of a Check. The allowed case is kept
// apart so that it stays free of allocation (errors.As makes its target
// escape).
func resultOf(err error) CheckResult {
	if err == nil {
		return CheckAllowed
	}
	return refusalOf(err)
}

func refusalOf(err error) CheckResult {
	var be *BanError
	switch {
	case errors.As(err, &be):
		if be.Reason == reasonCap {
			return CheckRestricted
		}
		return CheckBanned
	case errors.Is(err, ErrSessionRevoked):
		return CheckSessionRevoked
	case errors.Is(err, ErrTokenExpired):
		return CheckTokenExpired
	case errors.Is(err, ErrMirrorStale):
		return CheckStale
	default:
		return CheckTokenInvalid
	}
}

// CheckCounts returns how many checks the mirror has answered, by result.
func (m *Mirror) CheckCounts() CheckCounts { return m.checks.load() }
