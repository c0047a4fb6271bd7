package server

import "context"

// RuleOf exposes the access rule of a method to the external tests
// (server_test), so that the scope-escalation test derives its
// expectations from the one table rather than repeating it.
func RuleOf(method string) (scope string, public, refreshToken, ok bool) {
	r, ok := rules[method]
	return r.scope, r.public, r.refreshToken, ok
}

// AwaitFleet waits until ok holds of s's view of the other replicas (their
// reporting mirrors by replica ID), woken only by changes of the view.
func AwaitFleet(ctx context.Context, s *Server, ok func(mirrors map[string]int) bool) error {
	for {
		others, changed := s.fleet.Others()
		mirrors := map[string]int{}
		for id, sum := range others {
			mirrors[id] = sum.Mirrors
		}
		if ok(mirrors) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
