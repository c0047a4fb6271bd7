package interceptors

import "google.golang.org/grpc"

// UnaryServerInterceptor and StreamServerInterceptor give tests the
// interceptors of ServerOptions, to call them without a server. They panic
// on a configuration mistake (tests of those use ServerOptions).
func UnaryServerInterceptor(c Checker, opts ...Option) grpc.UnaryServerInterceptor {
	return mustAuthenticator(c, opts).unaryInterceptor()
}

func StreamServerInterceptor(c Checker, opts ...Option) grpc.StreamServerInterceptor {
	return mustAuthenticator(c, opts).streamInterceptor()
}

func mustAuthenticator(c Checker, opts []Option) *authenticator {
	a, err := newAuthenticator(c, opts)
	if err != nil {
		panic(err)
	}
	return a
}
