package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd"
)

// storeConfig is where serve keeps its state: the bbolt file (one
// authority) or an etcd cluster (several replicas, docs/design.md section 10).
type storeConfig struct {
	url      string // --store
	prefix   string // --etcd-prefix
	etcdCA   string
	etcdCert string
	etcdKey  string
	etcdUser string // --etcd-user
	etcdPass string // --etcd-password-file: the file's path
}

func addStoreFlags(f *pflag.FlagSet, c *storeConfig) {
	f.StringVar(&c.url, "store", "", "where the state lives: bolt://PATH (a bbolt file; default <data>/portcullis.db) or etcd://HOST:PORT[,HOST:PORT...] (an etcd cluster shared by several replicas)")
	f.StringVar(&c.prefix, "etcd-prefix", etcd.DefaultPrefix, "key prefix of the store in etcd (replicas of one authority use the same)")
	f.StringVar(&c.etcdCA, "etcd-ca", "", "PEM file of the CAs that sign the etcd servers' certificates (turns on TLS to etcd)")
	f.StringVar(&c.etcdCert, "etcd-cert", "", "PEM client certificate for etcd (with --etcd-key; turns on TLS to etcd)")
	f.StringVar(&c.etcdKey, "etcd-key", "", "PEM private key of --etcd-cert")
	f.StringVar(&c.etcdUser, "etcd-user", "", "etcd user name, when the cluster has authentication on (with --etcd-password-file)")
	f.StringVar(&c.etcdPass, "etcd-password-file", "", "file holding the password of --etcd-user (a file, not a flag value, so that it shows in no process list)")
}

// etcdAuth returns the user and password for etcd ("" and "" without
// --etcd-user).
func (c storeConfig) etcdAuth() (user, password string, err error) {
	if (c.etcdUser == "") != (c.etcdPass == "") {
		return "", "", usageError{errors.New("--etcd-user and --etcd-password-file go together")}
	}
	if c.etcdUser == "" {
		return "", "", nil
	}
	b, err := os.ReadFile(c.etcdPass)
	if err != nil {
		return "", "", fmt.Errorf("--etcd-password-file: %w", err)
	}
	password = strings.TrimRight(string(b), "\r\n")
	if password == "" {
		return "", "", usageError{fmt.Errorf("--etcd-password-file %s is empty", c.etcdPass)}
	}
	return c.etcdUser, password, nil
}

// storeTarget is a parsed --store.
type storeTarget struct {
	kind      string   // "bolt" or "etcd"
	path      string   // bolt
	endpoints []string // etcd
}

func parseStore(url, dataDir string) (storeTarget, error) {
	switch {
	case url == "":
		return storeTarget{kind: "bolt", path: filepath.Join(dataDir, "portcullis.db")}, nil
	case strings.HasPrefix(url, "bolt://"):
		p := strings.TrimPrefix(url, "bolt://")
		if p == "" {
			return storeTarget{}, usageError{errors.New("--store bolt:// needs a file path, e.g. bolt:///var/lib/portcullis/portcullis.db")}
		}
		return storeTarget{kind: "bolt", path: p}, nil
	case strings.HasPrefix(url, "etcd://"):
		var eps []string
		for _, e := range strings.Split(strings.TrimPrefix(url, "etcd://"), ",") {
			if e = strings.TrimSpace(e); e != "" {
				eps = append(eps, e)
			}
		}
		if len(eps) == 0 {
			return storeTarget{}, usageError{errors.New("--store etcd:// needs at least one HOST:PORT")}
		}
		return storeTarget{kind: "etcd", endpoints: eps}, nil
	}
	return storeTarget{}, usageError{fmt.Errorf("--store %q: want bolt://PATH or etcd://HOST:PORT[,HOST:PORT...]", url)}
}

// etcdTLS returns the TLS configuration for etcd, or nil for plaintext.
func (c storeConfig) etcdTLS() (*tls.Config, error) {
	if c.etcdCA == "" && c.etcdCert == "" && c.etcdKey == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.etcdCA != "" {
		pem, err := os.ReadFile(c.etcdCA)
		if err != nil {
			return nil, fmt.Errorf("--etcd-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, usageError{fmt.Errorf("--etcd-ca %s: no PEM certificate in it", c.etcdCA)}
		}
	}
	if (c.etcdCert == "") != (c.etcdKey == "") {
		return nil, usageError{errors.New("--etcd-cert and --etcd-key go together")}
	}
	if c.etcdCert != "" {
		cert, err := tls.LoadX509KeyPair(c.etcdCert, c.etcdKey)
		if err != nil {
			return nil, fmt.Errorf("--etcd-cert/--etcd-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// openStore opens the store --store names and returns it with a
// description for the log. The etcd flags without an etcd store are an
// error, so that a typo does not silently start a lone bbolt authority.
func openStore(ctx context.Context, c serveConfig, log *slog.Logger) (storage.Store, string, error) {
	target, err := parseStore(c.store.url, c.dataDir)
	if err != nil {
		return nil, "", err
	}
	switch target.kind {
	case "bolt":
		if c.store.etcdCA != "" || c.store.etcdCert != "" || c.store.etcdKey != "" || c.store.etcdUser != "" || c.store.etcdPass != "" {
			return nil, "", usageError{errors.New("--etcd-ca, --etcd-cert, --etcd-key, --etcd-user and --etcd-password-file need --store etcd://...")}
		}
		if err := os.MkdirAll(filepath.Dir(target.path), 0o700); err != nil {
			return nil, "", fmt.Errorf("store directory: %w", err)
		}
		s, err := bolt.Open(target.path, bolt.Options{RetainRevisions: c.retainRevisions, Logger: log})
		if err != nil {
			return nil, "", err
		}
		return s, "bolt://" + target.path, nil
	default:
		tlsCfg, err := c.store.etcdTLS()
		if err != nil {
			return nil, "", err
		}
		user, password, err := c.store.etcdAuth()
		if err != nil {
			return nil, "", err
		}
		s, err := etcd.Open(ctx, etcd.Options{Endpoints: target.endpoints, Prefix: c.store.prefix, TLS: tlsCfg,
			Username: user, Password: password, Logger: log})
		if err != nil {
			return nil, "", err
		}
		return s, "etcd://" + strings.Join(target.endpoints, ",") + s.Prefix(), nil
	}
}
