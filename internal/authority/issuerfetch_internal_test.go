package authority

import (
	"testing"
	"time"
)

// TestMaxAgeOf: the JWKS's Cache-Control sets the next fetch, within
// [1 min, 24 h]; without one, 15 minutes; no-cache and no-store the
// lower bound.
func TestMaxAgeOf(t *testing.T) {
	for cc, want := range map[string]time.Duration{
		"":                               issuerDefaultRefresh,
		"public, max-age=3600":           time.Hour,
		"max-age=5":                      issuerMinRefresh,
		"max-age=99999999999999":         issuerMaxRefresh,
		"max-age=-1":                     issuerDefaultRefresh,
		"max-age=abc":                    issuerDefaultRefresh,
		"no-cache":                       issuerMinRefresh,
		"no-store, max-age=600":          issuerMinRefresh,
		`MAX-AGE="600", must-revalidate`: 10 * time.Minute,
	} {
		if got := maxAgeOf(cc); got != want {
			t.Errorf("maxAgeOf(%q) = %s, want %s", cc, got, want)
		}
	}
}
