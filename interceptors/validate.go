package interceptors

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc"
)

// WithServices gives the descriptors of the services the server registers
// (the generated Foo_ServiceDesc, grpc_health_v1.Health_ServiceDesc, ...),
// so that ServerOptions fails when an option names a method that none of
// them has: a typo in WithPublicMethods would refuse a health check, and
// one in WithCapabilities or WithStrictMethods would silently leave the
// method unrestricted. Without it, method names are not checked.
// Repeatable.
func WithServices(descs ...*grpc.ServiceDesc) Option {
	return func(c *config) { c.services = append(c.services, descs...) }
}

// validate reports the configuration mistakes of c with checker, all at
// once, so that a service fails at start-up rather than on calls.
func (c *config) validate(checker Checker) error {
	errs := slices.Clone(c.errs)
	if checker == nil {
		errs = append(errs, errors.New("nil Checker"))
	}
	strict := false
	for m, mode := range c.consistency.methods {
		if _, public := c.public[splitMethod(m)]; public {
			errs = append(errs, fmt.Errorf("%s is public and also strict or authority-checked", m))
		}
		strict = strict || mode == catchUp
	}
	if _, ok := checker.(catchUpChecker); strict && checker != nil && !ok {
		errs = append(errs, fmt.Errorf("WithStrictMethods: the checker (%T) cannot catch up with the authority (it has no CatchUp method)", checker))
	}
	for m := range c.capabilities {
		if _, public := c.public[splitMethod(m)]; public {
			errs = append(errs, fmt.Errorf("WithCapabilities: %s is public, so its capability is never checked", m))
		}
	}
	if len(c.services) > 0 {
		known := map[methodKey]bool{}
		for _, d := range c.services {
			for _, m := range d.Methods {
				known[methodKey{d.ServiceName, m.MethodName}] = true
			}
			for _, s := range d.Streams {
				known[methodKey{d.ServiceName, s.StreamName}] = true
			}
		}
		named := map[string]string{}
		for k := range c.public {
			named["/"+k.service+"/"+k.method] = "WithPublicMethods"
		}
		for m := range c.capabilities {
			named[m] = "WithCapabilities"
		}
		for m := range c.consistency.methods {
			named[m] = "WithStrictMethods or WithAuthorityMethods"
		}
		for m, opt := range named {
			if !known[splitMethod(m)] {
				errs = append(errs, fmt.Errorf("%s: %s is no method of the services given to WithServices", opt, m))
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return fmt.Errorf("interceptors: invalid configuration: %w", errors.Join(errs...))
}
