package agent_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNoInternals: the agent depends on the API and the SDK only,
// as any service does. Its production code (everything it links, not only
// what it names) reaches nothing under internal/ or server/, and its tests
// name neither directly (they reach the authority through authoritytest).
// clientip, which the interceptors share, stays a leaf: ident and the
// standard library.
func TestImportsNoInternals(t *testing.T) {
	const module = "github.com/portcullis-dev/portcullis"
	bad := func(p string) bool {
		for _, root := range []string{module + "/internal", module + "/server"} {
			if p == root || strings.HasPrefix(p, root+"/") {
				return true
			}
		}
		return false
	}
	list := func(args ...string) []string {
		cmd := exec.Command("go", append([]string{"list", "-e"}, args...)...)
		cmd.Dir = ".."
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %v: %v", args, err)
		}
		return strings.Fields(string(out))
	}
	for _, p := range list("-deps", "./agent") {
		if bad(p) {
			t.Errorf("agent links %s", p)
		}
	}
	for _, p := range list("-f", `{{range .TestImports}}{{.}} {{end}}{{range .XTestImports}}{{.}} {{end}}`, "./agent") {
		if bad(p) {
			t.Errorf("agent's tests import %s; use authoritytest", p)
		}
	}
	for _, p := range list("-f", `{{range .Imports}}{{.}} {{end}}`, "./clientip") {
		if strings.HasPrefix(p, module+"/") && p != module+"/ident" {
			t.Errorf("clientip imports %s; it must stay a leaf (ident and the standard library)", p)
		}
	}
}
