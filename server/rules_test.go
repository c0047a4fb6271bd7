package server

import (
	"testing"

	"google.golang.org/grpc"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt/bolttest"
)

// TestEveryMethodHasARule walks the service descriptors registered on a
// real server and fails for any method without an access rule, and for any
// rule naming a method that does not exist (a stale or misspelled rule).
func TestEveryMethodHasARule(t *testing.T) {
	store := bolttest.Open(t, bolt.Options{})
	g := grpc.NewServer()
	New(authority.New(store, authority.Config{}), Options{}).Register(g)

	seen := map[string]bool{}
	for svc, info := range g.GetServiceInfo() {
		if len(info.Methods) == 0 {
			t.Errorf("service %s has no methods", svc)
		}
		for _, m := range info.Methods {
			full := "/" + svc + "/" + m.Name
			seen[full] = true
			r, ok := rules[full]
			switch {
			case !ok:
				t.Errorf("%s has no rule in server/auth.go", full)
			case r.public && (r.scope != "" || r.refreshToken):
				t.Errorf("%s: a public rule must not also name a scope or the refresh token", full)
			case !r.public && !r.refreshToken && !validScope(r.scope):
				t.Errorf("%s: scope %q is not a known scope", full, r.scope)
			}
		}
	}
	for m := range rules {
		if !seen[m] {
			t.Errorf("rule for %s, which no registered service has", m)
		}
	}
	if len(seen) < 20 {
		t.Fatalf("only %d methods registered; the walk is not seeing the services", len(seen))
	}
}

func validScope(s string) bool {
	for _, v := range authority.AllScopes {
		if s == v {
			return true
		}
	}
	return false
}
