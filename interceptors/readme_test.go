package interceptors_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeProtectBlock: the Go block of README.md's "Protect a Go
// service" is the function protect of protect_example_test.go, which
// Example runs against a real authority, so the README's code compiles and
// works.
func TestReadmeProtectBlock(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)## Protect a Go service\n.*?```go\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal(`README.md has no Go block under "## Protect a Go service"`)
	}
	src, err := os.ReadFile("protect_example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	fn := regexp.MustCompile(`(?s)\nfunc protect\(.*?\n}\n`).Find(src)
	if fn == nil {
		t.Fatal("protect_example_test.go has no func protect")
	}
	want := strings.TrimPrefix(string(fn), "\n")
	if got := string(m[1]); got != want {
		t.Fatalf("README block:\n%s\nprotect:\n%s", got, want)
	}
	if n := strings.Count(want, "\n") - 2; n > 10 {
		t.Fatalf("protect's body is %d lines, more than the promised 10", n)
	}
}
