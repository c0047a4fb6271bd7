package interceptors

import (
	"context"
	"fmt"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

const authorizationKey = "authorization"

// TokenSource returns the access token for an outgoing call, for example
// the current token of a session the caller refreshes. An error fails the
// call before it is sent; "" sends the call without a token.
type TokenSource func(ctx context.Context) (string, error)

// UnaryClientInterceptor attaches "authorization: Bearer <token>" from
// tokenSource to every outgoing unary call, unless the call's context
// already carries a token (WithToken). tokenSource may be nil when every
// call's context carries one.
func UnaryClientInterceptor(tokenSource TokenSource) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		ctx, err := attachToken(ctx, method, tokenSource)
		if err != nil {
			return err
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// StreamClientInterceptor is UnaryClientInterceptor for streams.
func StreamClientInterceptor(tokenSource TokenSource) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		ctx, err := attachToken(ctx, method, tokenSource)
		if err != nil {
			return nil, err
		}
		return streamer(ctx, desc, cc, method, opts...)
	}
}

func attachToken(ctx context.Context, method string, src TokenSource) (context.Context, error) {
	if src == nil || len(metadata.ValueFromOutgoingContext(ctx, authorizationKey)) > 0 {
		return ctx, nil
	}
	tok, err := src(ctx)
	if err != nil {
		return nil, fmt.Errorf("interceptors: no access token for %s: %w", method, err)
	}
	if tok == "" {
		return ctx, nil
	}
	return metadata.AppendToOutgoingContext(ctx, authorizationKey, "Bearer "+tok), nil
}

// WithToken returns a context whose outgoing calls carry token as
// "authorization: Bearer <token>", replacing any authorization already in
// ctx's outgoing metadata. With TokenFromIncoming, a handler forwards its
// caller's token to another service:
//
//	if tok, ok := interceptors.TokenFromIncoming(ctx); ok {
//		ctx = interceptors.WithToken(ctx, tok)
//	}
func WithToken(ctx context.Context, token string) context.Context {
	md, _ := metadata.FromOutgoingContext(ctx) // a copy
	if md == nil {
		md = metadata.MD{}
	}
	md.Set(authorizationKey, "Bearer "+token)
	return metadata.NewOutgoingContext(ctx, md)
}

// TokenFromIncoming returns the bearer token of the incoming call ctx
// belongs to, if it sent one.
func TokenFromIncoming(ctx context.Context) (string, bool) {
	tok, err := auth.AuthFromMD(ctx, "bearer")
	if err != nil || tok == "" {
		return "", false
	}
	return tok, true
}
