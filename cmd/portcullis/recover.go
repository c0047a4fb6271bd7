package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
)

// recover-admin is the way back for an operator with no usable admin key
// (the last one expired, or its secret is lost): the API refuses to revoke
// the last one, but cannot prevent those. It writes a new admin key
// straight into the store, so it needs what serve needs (the bbolt file or
// etcd's credentials), and no API key.

// recoverLockTimeout is how long recover-admin waits for the bbolt file
// lock. A running authority holds it for its whole life, so waiting
// longer would not help; a short wait only rides out an authority that
// is just closing.
const recoverLockTimeout = time.Second

type recoverConfig struct {
	dataDir string
	keyFile string
	name    string
	reason  string
	store   storeConfig
}

func newRecoverAdminCommand() *cobra.Command {
	var c recoverConfig
	cmd := &cobra.Command{
		Use:   "recover-admin",
		Short: "Write a new admin API key into a stopped authority's store (offline recovery)",
		Long: `Create an API key with scope admin directly in the store, for when no admin
key is left (expired, or its secret lost): it needs no API key, only the
store, with the same --data, --store and --etcd-* flags as serve. With bbolt,
stop the authority first: a file that a running authority holds is refused.
With etcd it may run while replicas serve, which accept the new key at once
(each call reads the keys from etcd).

The secret is written to --key-file (default <data>/admin.key, replaced, mode
0600), or printed once on stdout with --key-file -. The recovery is audited:
action apikey.recover, actor offline-recovery, address local. Afterwards,
revoke the keys you lost with portcullis apikeys revoke.`,
		Example: `  portcullis recover-admin --data /var/lib/portcullis
  portcullis recover-admin --store etcd://10.0.0.1:2379 --etcd-prefix /portcullis --key-file -`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := flagsFromEnv(cmd.Flags()); err != nil {
				return err
			}
			return recoverAdmin(cmd.Context(), c, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.dataDir, "data", "./data", "data directory: of the bbolt file (without --store) and of admin.key")
	f.StringVar(&c.keyFile, "key-file", "", `where to write the new key's secret (mode 0600; default <data>/admin.key); "-" prints it on stdout`)
	f.StringVar(&c.name, "name", "", "name of the new key (default "+authority.RecoverAdminKeyName+"<UTC time>)")
	f.StringVar(&c.reason, "reason", "", "why, for the audit record")
	addStoreFlags(f, &c.store)
	return cmd
}

func recoverAdmin(ctx context.Context, c recoverConfig, stdout, stderr io.Writer) (err error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, where, err := openRecoverStore(ctx, c, log)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := store.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing the store: %w", cerr)
		}
	}()
	// The key file is opened before the store is written, so that a key is
	// not created only to find that its secret cannot be kept.
	keyFile := c.keyFile
	if keyFile == "" {
		keyFile = filepath.Join(c.dataDir, "admin.key")
	}
	var out *pendingKeyFile
	if keyFile != "-" {
		if out, err = newPendingKeyFile(keyFile); err != nil {
			return err
		}
		defer out.abandon()
		if c.keyFile == "" {
			if err := checkDataDir(c.dataDir); err != nil { // as serve, which writes admin.key there too
				return err
			}
		}
	}
	key, secret, err := authority.New(store, authority.Config{Logger: log}).RecoverAdminKey(ctx, c.name, c.reason)
	if err != nil {
		return fmt.Errorf("recovering an admin key in %s: %w", where, err)
	}
	if out == nil {
		_, err := fmt.Fprintln(stdout, secret)
		return err
	}
	if err := out.commit(secret); err != nil {
		return fmt.Errorf("the admin key %s (%s) was created in %s, but its secret could not be written, so it is lost: %w; "+
			"run recover-admin again, and revoke that key with the new one", key.Name, key.ID, where, err)
	}
	_, err = fmt.Fprintf(stdout, "created API key %s (%s) with scope admin in %s\nsecret written to %s (mode 0600)\n",
		key.Name, key.ID, where, keyFile)
	return err
}

// openRecoverStore opens the store like serve, but refuses a bbolt file
// that does not exist (a wrong --data would otherwise create an empty
// store) or that a running authority holds (after recoverLockTimeout).
func openRecoverStore(ctx context.Context, c recoverConfig, log *slog.Logger) (storage.Store, string, error) {
	target, err := parseStore(c.store.url, c.dataDir)
	if err != nil {
		return nil, "", err
	}
	if target.kind != "bolt" {
		return openStore(ctx, serveConfig{dataDir: c.dataDir, store: c.store}, log)
	}
	if c.store.etcdCA != "" || c.store.etcdCert != "" || c.store.etcdKey != "" || c.store.etcdUser != "" || c.store.etcdPass != "" {
		return nil, "", usageError{errors.New("--etcd-ca, --etcd-cert, --etcd-key, --etcd-user and --etcd-password-file need --store etcd://...")}
	}
	if _, err := os.Stat(target.path); err != nil {
		return nil, "", fmt.Errorf("no store at %s (%w): recover-admin works on the store of an authority that has run; check --data or --store", target.path, err)
	}
	s, err := bolt.Open(target.path, bolt.Options{OpenTimeout: recoverLockTimeout, Logger: log})
	if errors.Is(err, bberrors.ErrTimeout) {
		return nil, "", fmt.Errorf("%s is locked by another process, most likely a running authority: stop it first "+
			"(with etcd, recover-admin may run while replicas serve; with bbolt the authority must be stopped)", target.path)
	}
	if err != nil {
		return nil, "", err
	}
	return s, "bolt://" + target.path, nil
}

// pendingKeyFile is a secret's file being written: a temporary file next
// to its final path, renamed over it once the secret is in it, so that a
// failure leaves the previous file as it was.
type pendingKeyFile struct {
	f    *os.File
	path string
}

func newPendingKeyFile(path string) (*pendingKeyFile, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("key file directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".admin.key-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	return &pendingKeyFile{f: f, path: path}, nil
}

func (p *pendingKeyFile) commit(secret string) error {
	if _, err := p.f.WriteString(secret + "\n"); err != nil {
		return err
	}
	if err := p.f.Chmod(0o600); err != nil {
		return err
	}
	if err := p.f.Sync(); err != nil {
		return err
	}
	if err := p.f.Close(); err != nil {
		return err
	}
	if err := os.Rename(p.f.Name(), p.path); err != nil {
		return err
	}
	p.f = nil
	return nil
}

// abandon removes the temporary file unless commit renamed it.
func (p *pendingKeyFile) abandon() {
	if p.f != nil {
		p.f.Close()
		os.Remove(p.f.Name())
	}
}
