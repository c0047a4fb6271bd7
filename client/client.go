package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// Client is a connection to the authority with a typed client for each
// service. Every error its calls return has been converted by FromStatus,
// so errors.Is(err, ErrBanned) and friends work on all of them.
type Client struct {
	Sessions pb.SessionServiceClient
	Bans     pb.BanServiceClient
	Events   pb.EventServiceClient
	Keys     pb.KeyServiceClient
	Audit    pb.AuditServiceClient
	APIKeys  pb.APIKeyServiceClient
	// Issuers manages the external OIDC issuers whose tokens mirrors accept.
	Issuers pb.IssuerServiceClient
	// Signals manages the Shared Signals transmitters the authority
	// receives from.
	Signals pb.SignalServiceClient

	conn *grpc.ClientConn
}

// Option configures Dial.
type Option func(*dialConfig)

type dialConfig struct {
	apiKey   string
	tls      *tls.Config
	insecure bool
	extra    []grpc.DialOption
}

// WithAPIKey sends "authorization: Bearer <key>" with every call.
func WithAPIKey(key string) Option { return func(c *dialConfig) { c.apiKey = key } }

// WithTLS connects over TLS with cfg (nil: the system roots). TLS is the
// default; WithTLS is for a custom configuration (private CA, client
// certificate for mutual TLS).
func WithTLS(cfg *tls.Config) Option {
	return func(c *dialConfig) {
		if cfg == nil {
			cfg = &tls.Config{}
		}
		c.tls = cfg
	}
}

// WithInsecure connects in plaintext: for an authority on loopback (or
// behind a trusted proxy). The API key is then sent in plaintext too.
func WithInsecure() Option { return func(c *dialConfig) { c.insecure = true } }

// WithDialOptions adds gRPC dial options (dialer, keepalive, connect
// backoff, more interceptors). They come after Dial's own options. Choose
// the transport with WithTLS or WithInsecure rather than
// grpc.WithTransportCredentials: WithAPIKey follows that choice.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *dialConfig) { c.extra = append(c.extra, opts...) }
}

// Dial returns a client of the authority at target (a gRPC target such as
// "127.0.0.1:7470" or "dns:///authority.internal:7470"). It connects
// lazily, on the first call, like grpc.NewClient, and reconnects with a
// backoff capped at 5 s (WithDialOptions(grpc.WithConnectParams(...))
// changes it). Without WithInsecure it uses TLS.
//
// target may also list the replicas of one authority, as host:port
// addresses separated by commas ("10.0.0.1:7470,10.0.0.2:7470"). The
// connection then uses one replica at a time (gRPC's pick_first, so that
// a Watch stream and its progress reports reach the same replica), and
// when that one fails it moves to another: a Mirror resumes there from its
// revision. The list is shuffled when the client starts and again on every
// connection loss, so that clients spread over the replicas and a dead one
// is not always tried first. With TLS, each address is verified against
// its own host name (unless the tls.Config sets ServerName).
func Dial(target string, opts ...Option) (*Client, error) {
	var replicas *replicaResolver
	if strings.Contains(target, ",") {
		var err error
		if replicas, err = newReplicaResolver(target); err != nil {
			return nil, err
		}
		target = replicaScheme + ":///" + replicas.String()
	}
	var cfg dialConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.insecure && cfg.tls != nil {
		return nil, errors.New("client: WithTLS and WithInsecure exclude each other")
	}
	var transport credentials.TransportCredentials
	if cfg.insecure {
		transport = insecure.NewCredentials()
	} else {
		if cfg.tls == nil {
			cfg.tls = &tls.Config{}
		}
		transport = credentials.NewTLS(cfg.tls)
	}
	dialOpts := []grpc.DialOption{
		grpc.WithTransportCredentials(transport),
		// gRPC's default reconnection backoff grows to 120 s: a Mirror would
		// stay stale for up to two minutes after its authority is back.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 250 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
		grpc.WithChainUnaryInterceptor(unaryErrors),
		grpc.WithChainStreamInterceptor(streamErrors),
	}
	if replicas != nil {
		// Registered for this connection only (no global registry).
		dialOpts = append(dialOpts, grpc.WithResolvers(replicas))
	}
	if cfg.apiKey != "" {
		// gRPC refuses credentials that require transport security on a
		// plaintext connection; an API key over loopback is the documented
		// local setup, so require it only when the connection is TLS.
		dialOpts = append(dialOpts, grpc.WithPerRPCCredentials(bearer{key: cfg.apiKey, secure: !cfg.insecure}))
	}
	conn, err := grpc.NewClient(target, append(dialOpts, cfg.extra...)...)
	if err != nil {
		return nil, fmt.Errorf("client: dial %s: %w", target, err)
	}
	return &Client{
		Sessions: pb.NewSessionServiceClient(conn),
		Bans:     pb.NewBanServiceClient(conn),
		Events:   pb.NewEventServiceClient(conn),
		Keys:     pb.NewKeyServiceClient(conn),
		Audit:    pb.NewAuditServiceClient(conn),
		APIKeys:  pb.NewAPIKeyServiceClient(conn),
		Issuers:  pb.NewIssuerServiceClient(conn),
		Signals:  pb.NewSignalServiceClient(conn),
		conn:     conn,
	}, nil
}

// Conn returns the underlying connection (for health checks, or more
// service clients on the same connection).
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection. Calls in flight fail with Canceled.
func (c *Client) Close() error { return c.conn.Close() }

// bearer is the per-RPC credential of WithAPIKey.
type bearer struct {
	key    string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.key}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.secure }

// unaryErrors converts the status of every unary call.
func unaryErrors(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return FromStatus(invoker(ctx, method, req, reply, cc, opts...))
}

// streamErrors converts the status of every stream call, at opening and on
// every operation of the stream (io.EOF passes through unchanged).
func streamErrors(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return nil, FromStatus(err)
	}
	return errStream{s}, nil
}

type errStream struct{ grpc.ClientStream }

func (s errStream) SendMsg(m any) error { return convertStreamErr(s.ClientStream.SendMsg(m)) }
func (s errStream) RecvMsg(m any) error { return convertStreamErr(s.ClientStream.RecvMsg(m)) }
func (s errStream) CloseSend() error    { return convertStreamErr(s.ClientStream.CloseSend()) }

func (s errStream) Header() (metadata.MD, error) {
	md, err := s.ClientStream.Header()
	return md, convertStreamErr(err)
}

func convertStreamErr(err error) error {
	if err == io.EOF {
		return err
	}
	return FromStatus(err)
}
