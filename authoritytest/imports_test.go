package authoritytest_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is this repository's module path.
const module = "github.com/portcullis-dev/portcullis"

// forbidden lists the imports under internal/ or server/: what client/
// and interceptors/ must not import, their tests included. Their tests
// reach the authority through authoritytest instead, which is what keeps
// the packages usable, and tested, as their users use them.
func forbidden(imports []string) []string {
	var out []string
	for _, p := range imports {
		for _, root := range []string{module + "/internal", module + "/server"} {
			if p == root || strings.HasPrefix(p, root+"/") {
				out = append(out, p)
			}
		}
	}
	return out
}

func TestForbidden(t *testing.T) {
	got := forbidden([]string{
		module + "/client", module + "/internal/storage", module + "/server", module + "/serverless",
		module + "/authoritytest", module + "/internal", "example.com/internal",
	})
	want := []string{module + "/internal/storage", module + "/server", module + "/internal"}
	if !slices.Equal(got, want) {
		t.Fatalf("forbidden = %q, want %q", got, want)
	}
}

// TestClientAndInterceptorsImportNoInternals: no package of client/ or
// interceptors/, and no test of theirs, imports internal/ or server/
// directly. `go list` without -deps reads only the packages' own imports,
// so the test takes a fraction of a second and needs no build.
func TestClientAndInterceptorsImportNoInternals(t *testing.T) {
	cmd := exec.Command("go", "list", "-e",
		"-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}}`,
		"./client/...", "./interceptors/...")
	cmd.Dir = ".." // the module's root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var listed []string
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		fields := strings.Fields(line)
		listed = append(listed, fields[0])
		if bad := forbidden(fields[1:]); len(bad) > 0 {
			t.Errorf("%s imports %s; reach the authority through authoritytest", fields[0], strings.Join(bad, ", "))
		}
	}
	// The patterns matched what they must: a typo would check nothing.
	for _, p := range []string{module + "/client", module + "/interceptors"} {
		if !slices.Contains(listed, p) {
			t.Errorf("go list did not list %s: %q", p, listed)
		}
	}
}
