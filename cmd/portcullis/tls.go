package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// certReloader serves the certificate and key in certFile and keyFile
// (and, for mutual TLS, verifies clients against the CAs in caFile),
// re-reading them when a file's size or modification time changes: the
// check runs on every handshake, so a renewed certificate is served from
// the next connection on, without a restart. A file that fails to load
// (half written, say) leaves the previous configuration in place and is
// tried again on the next handshake.
type certReloader struct {
	certFile, keyFile, caFile string
	log                       *slog.Logger

	mu    sync.Mutex
	stamp string // sizes and mtimes of the files last loaded
	cert  *tls.Certificate
	pool  *x509.CertPool
}

func newCertReloader(certFile, keyFile, caFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, caFile: caFile, log: log}
	if err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) files() []string {
	if r.caFile == "" {
		return []string{r.certFile, r.keyFile}
	}
	return []string{r.certFile, r.keyFile, r.caFile}
}

func (r *certReloader) currentStamp() (string, error) {
	var s string
	for _, f := range r.files() {
		fi, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		s += fmt.Sprintf("%s:%d:%d;", f, fi.Size(), fi.ModTime().UnixNano())
	}
	return s, nil
}

// reload loads the files if they changed since the last load.
func (r *certReloader) reload() error {
	stamp, err := r.currentStamp()
	if err != nil {
		return fmt.Errorf("TLS files: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if stamp == r.stamp {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	var pool *x509.CertPool
	if r.caFile != "" {
		pem, err := os.ReadFile(r.caFile)
		if err != nil {
			return fmt.Errorf("--client-ca: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return errors.New("--client-ca: no PEM certificate in " + r.caFile)
		}
	}
	if r.stamp != "" {
		r.log.Info("TLS certificate reloaded", "cert", r.certFile, "client_ca", r.caFile)
	}
	r.cert, r.pool, r.stamp = &cert, pool, stamp
	return nil
}

// config returns a server tls.Config whose handshakes use the current
// files. requireClientCert asks for a client certificate signed by the
// client CA (when one is configured); nextProtos is the ALPN list ("h2"
// for gRPC).
func (r *certReloader) config(requireClientCert bool, nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: nextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			if err := r.reload(); err != nil {
				r.log.Warn("TLS files changed but do not load; serving the previous ones", "error", err)
			}
			r.mu.Lock()
			cert, pool := r.cert, r.pool
			r.mu.Unlock()
			cfg := &tls.Config{
				MinVersion:   tls.VersionTLS12,
				NextProtos:   nextProtos,
				Certificates: []tls.Certificate{*cert},
			}
			if requireClientCert && pool != nil {
				cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, pool
			}
			return cfg, nil
		},
	}
}

// tlsFlagsError checks that the TLS flags go together.
func tlsFlagsError(cert, key, ca string) error {
	switch {
	case (cert == "") != (key == ""):
		return usageError{errors.New("--tls-cert and --tls-key go together")}
	case ca != "" && cert == "":
		return usageError{errors.New("--client-ca (mutual TLS) needs --tls-cert and --tls-key")}
	}
	return nil
}

// addTLSFlags registers the TLS flags of `serve`.
func addTLSFlags(f *pflag.FlagSet, c *serveConfig) {
	f.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate (chain) of the gRPC and HTTP listeners; reloaded when the file changes")
	f.StringVar(&c.tlsKey, "tls-key", "", "PEM private key of --tls-cert; reloaded when the file changes")
	f.StringVar(&c.clientCA, "client-ca", "", "PEM CA certificates: require gRPC clients to present a certificate they signed (mutual TLS)")
}

// transport is how the listeners are secured.
type transport struct {
	grpc     []grpc.ServerOption
	wrapHTTP func(net.Listener) net.Listener
}

// setupTransport returns TLS for both listeners when --tls-cert is given
// (any address is then fine), or plaintext, which off loopback needs
// --insecure (docs/design.md section 6). Mutual TLS (--client-ca) applies to
// the gRPC API; the HTTP listener (health, JWKS, metrics) uses the same
// certificate but asks no client certificate, so that probes work.
func setupTransport(c serveConfig, log *slog.Logger) (transport, error) {
	if err := tlsFlagsError(c.tlsCert, c.tlsKey, c.clientCA); err != nil {
		return transport{}, err
	}
	if c.tlsCert == "" {
		if err := checkPlaintext("listen", c.listen, c.insecure, log); err != nil {
			return transport{}, err
		}
		if c.httpListen != "" {
			if err := checkPlaintext("http-listen", c.httpListen, c.insecure, log); err != nil {
				return transport{}, err
			}
		}
		return transport{wrapHTTP: func(l net.Listener) net.Listener { return l }}, nil
	}
	r, err := newCertReloader(c.tlsCert, c.tlsKey, c.clientCA, log)
	if err != nil {
		return transport{}, usageError{err}
	}
	httpCfg := r.config(false, "h2", "http/1.1")
	return transport{
		grpc:     []grpc.ServerOption{grpc.Creds(credentials.NewTLS(r.config(true, "h2")))},
		wrapHTTP: func(l net.Listener) net.Listener { return tls.NewListener(l, httpCfg) },
	}, nil
}

// checkDataDir refuses a data directory that other users can write: they
// could replace the database or admin.key.
func checkDataDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if fi.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("data directory %s is writable by every user (mode %v): anyone could replace the database or admin.key; run chmod o-w %s (0700 is best)", dir, fi.Mode().Perm(), dir)
	}
	return nil
}
