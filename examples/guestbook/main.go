package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/reflection"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"

	"github.com/portcullis-dev/portcullis/client"
	"github.com/portcullis-dev/portcullis/interceptors"
)

// config is the command line.
type config struct {
	authority      string
	apiKeyFile     string
	listen         string
	insecure       bool
	trustedProxies []netip.Prefix
	syncTimeout    time.Duration
	staleAfter     time.Duration
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("guestbook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.authority, "authority", "127.0.0.1:7470", "gRPC address of the Portcullis authority")
	fs.StringVar(&c.apiKeyFile, "api-key-file", "data/admin.key", "file holding an API key with the events:watch scope")
	fs.StringVar(&c.listen, "listen", "127.0.0.1:7480", "address the guestbook serves gRPC on, in plaintext")
	fs.BoolVar(&c.insecure, "insecure", false, "allow plaintext beyond loopback: to a non-loopback authority and on a non-loopback --listen")
	fs.Func("trusted-proxy", "CIDR of a proxy whose x-forwarded-for is believed (repeatable)", func(s string) error {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return err
		}
		c.trustedProxies = append(c.trustedProxies, p)
		return nil
	})
	fs.DurationVar(&c.syncTimeout, "sync-timeout", 30*time.Second, "how long to wait for the mirror's first snapshot")
	fs.DurationVar(&c.staleAfter, "stale-after", 30*time.Second, "refuse calls (MIRROR_STALE) after this long without word from the authority")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if !c.insecure && !isLoopback(c.listen) {
		return c, fmt.Errorf("--listen %s is not a loopback address: the guestbook serves plaintext, which needs --insecure there", c.listen)
	}
	return c, nil
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "guestbook:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log, nil); err != nil {
		log.Error("guestbook", "error", err)
		os.Exit(1)
	}
}

// run serves the guestbook until ctx ends. ready, if not nil, is called
// with the listening address once the mirror is synced and the server
// accepts calls.
func run(ctx context.Context, cfg config, log *slog.Logger, ready func(net.Addr)) error {
	key, err := os.ReadFile(cfg.apiKeyFile)
	if err != nil {
		return fmt.Errorf("read the API key: %w", err)
	}
	opts := []client.Option{client.WithAPIKey(strings.TrimSpace(string(key)))}
	if cfg.insecure || isLoopback(cfg.authority) {
		opts = append(opts, client.WithInsecure())
	}
	authority, err := client.Dial(cfg.authority, opts...)
	if err != nil {
		return err
	}
	defer authority.Close()

	log.Info("waiting for the authority's snapshot", "authority", cfg.authority)
	syncCtx, cancel := context.WithTimeout(ctx, cfg.syncTimeout)
	mirror, stopMirror, err := client.StartMirror(syncCtx, authority, client.MirrorOptions{Logger: log, StaleAfter: cfg.staleAfter})
	cancel()
	if err != nil {
		return fmt.Errorf("mirror of %s: %w", cfg.authority, err)
	}
	defer stopMirror()

	lis, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	b := newBook()
	g, err := newServer(mirror, b, log, cfg.trustedProxies)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- g.Serve(lis) }()
	log.Info("guestbook serving", "listen", lis.Addr().String(), "revision", mirror.Revision())
	if ready != nil {
		ready(lis.Addr())
	}

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	b.close() // end follow and chat streams, which would hold GracefulStop
	stopped := make(chan struct{})
	go func() {
		g.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		g.Stop()
	}
	return nil
}

// newServer returns the guestbook's gRPC server: the Portcullis
// interceptors in front of the book, health and reflection public.
func newServer(c interceptors.Checker, b *book, log *slog.Logger, trustedProxies []netip.Prefix) (*grpc.Server, error) {
	guard, err := interceptors.ServerOptions(c,
		interceptors.WithServices(&testgrpc.TestService_ServiceDesc, &grpc_health_v1.Health_ServiceDesc,
			&reflectionv1.ServerReflection_ServiceDesc, &reflectionv1alpha.ServerReflection_ServiceDesc),
		interceptors.WithPublicMethods(
			grpc_health_v1.Health_Check_FullMethodName,
			grpc_health_v1.Health_List_FullMethodName,
			grpc_health_v1.Health_Watch_FullMethodName,
			reflectionv1.ServerReflection_ServerReflectionInfo_FullMethodName,
			reflectionv1alpha.ServerReflection_ServerReflectionInfo_FullMethodName,
		),
		interceptors.WithCapabilities(map[string]string{
			testgrpc.TestService_UnaryCall_FullMethodName:      "post",
			testgrpc.TestService_FullDuplexCall_FullMethodName: "chat",
		}),
		interceptors.WithTrustedProxies(trustedProxies...),
		interceptors.WithDeviceIDMetadata("x-device-id"),
		interceptors.WithLogger(log),
	)
	if err != nil {
		return nil, err
	}
	g := grpc.NewServer(guard...)
	testgrpc.RegisterTestServiceServer(g, b)
	grpc_health_v1.RegisterHealthServer(g, health.NewServer())
	reflection.Register(g)
	return g, nil
}

// isLoopback reports whether addr ("host:port") names this machine.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
