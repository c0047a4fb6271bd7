package robustness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readKey reads the admin key the first start wrote.
func readKey(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
