package transmitter

import "testing"

// TestJTIRevision: a poll reads the revision back out of the jti values
// it made, and only out of its own stream's.
func TestJTIRevision(t *testing.T) {
	for _, c := range []struct {
		stream, jti string
		rev         int64
		ok          bool
	}{
		{"sst_a", jti("sst_a", 42, 3), 42, true},
		{"sst_a", jti("sst_a", 1, 0), 1, true},
		{"sst_a", jti("sst_b", 42, 3), 0, false},
		{"sst_a", "sst_a-x-1", 0, false},
		{"sst_a", "sst_a-42", 0, false},
		{"sst_a", "", 0, false},
	} {
		rev, ok := jtiRevision(c.stream, c.jti)
		if rev != c.rev || ok != c.ok {
			t.Errorf("jtiRevision(%q, %q) = %d, %v; want %d, %v", c.stream, c.jti, rev, ok, c.rev, c.ok)
		}
	}
}
