package server

// RuleOf exposes the access rule of a method to the external tests
// (server_test), so that the scope-escalation test derives its
// expectations from the one table rather than repeating it.
func RuleOf(method string) (scope string, public, refreshToken, ok bool) {
	r, ok := rules[method]
	return r.scope, r.public, r.refreshToken, ok
}
