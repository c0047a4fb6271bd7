package rpcerr_test

import (
	"go/build"
	"strings"
	"testing"
)

// TestLeaf: the catalogue imports nothing that client/ may not, so that
// both the server and the Go client can use it.
func TestLeaf(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	allowed := []string{
		"github.com/portcullis-dev/portcullis/gen/",
		"google.golang.org/grpc/codes",
		"google.golang.org/grpc/status",
		"google.golang.org/genproto/googleapis/rpc/errdetails",
		"google.golang.org/protobuf/",
	}
	for _, imp := range pkg.Imports {
		ok := !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") // standard library
		for _, a := range allowed {
			ok = ok || strings.HasPrefix(imp, a)
		}
		if !ok {
			t.Errorf("rpcerr imports %s", imp)
		}
	}
}
