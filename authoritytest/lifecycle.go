package authoritytest

import (
	"context"
	"errors"
	"fmt"
	"net"

	"google.golang.org/grpc/test/bufconn"

	"github.com/portcullis-dev/portcullis/internal/authority"
	"github.com/portcullis-dev/portcullis/server"
)

// Stop stops the authority as `portcullis serve` does on SIGTERM (open
// streams end with Unavailable) and closes its store, keeping the data:
// for a test of what clients and mirrors do while their authority is
// down. Clients from Dial stay open and fail to connect until Restart.
// Stopping a stopped authority is harmless.
func (a *Authority) Stop() {
	a.mu.Lock()
	err := a.stopLocked()
	a.mu.Unlock()
	if err != nil {
		a.fail("authoritytest: Stop: %v", err)
	}
}

// Restart starts the authority again on the same data, as a restarted
// `portcullis serve` does: the same store (store_id, revision, bans,
// sessions, signing keys, API keys and so AdminKey), the same in-memory
// listener address and, under Options.Loopback, the same TCP port. A
// running authority is stopped first. Clients from Dial reconnect:
// Restart returns once they are connected (or idle, connecting on their
// next call), so that the test's next call does not race the reconnection.
func (a *Authority) Restart() {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		a.fail("authoritytest: Restart after Close")
		return
	}
	err := a.stopLocked()
	a.mu.Unlock()
	if err != nil {
		a.fail("authoritytest: Restart: stop: %v", err)
		return
	}
	if err := a.serve(); err != nil {
		a.fail("authoritytest: Restart: %v", err)
		return
	}
	if err := a.reconnected(); err != nil {
		a.fail("authoritytest: Restart: %v", err)
	}
}

// serve opens the store and serves it, wiring the authority as `portcullis
// serve` does.
func (a *Authority) serve() (err error) {
	store, err := a.backend.open()
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, store.Close())
		}
	}()
	auth := authority.New(store, authority.Config{Clock: a.clock.Now, Logger: a.log})
	ctx := context.Background()
	if err := auth.EnsureSigningKey(ctx); err != nil {
		return err
	}
	key, err := auth.EnsureBootstrapKey(ctx)
	if err != nil {
		return err
	}
	if a.AdminKey == "" && key == "" {
		// A store bootstrapped before (an etcd prefix of the caller's):
		// its bootstrap secret is gone, so make another admin key.
		_, key, err = auth.CreateAPIKey(ctx, authority.System, "authoritytest-admin", []string{authority.ScopeAdmin}, nil)
		if err != nil {
			return err
		}
	}
	run := &instance{store: store, auth: auth, lis: bufconn.Listen(1 << 20)}
	if a.tcpAddr != "" {
		if run.tcp, err = net.Listen("tcp", a.tcpAddr); err != nil {
			return fmt.Errorf("listen on %s again: %w", a.tcpAddr, err)
		}
	}
	run.srv = server.New(auth, server.Options{
		Logger:             a.log,
		CheckpointInterval: a.opts.CheckpointInterval,
		SendTimeout:        a.opts.SendTimeout,
		ProgressTimeout:    a.opts.ProgressTimeout,
		SnapshotPartSize:   a.opts.SnapshotPartSize,
		PublicURL:          a.opts.PublicURL,
	})
	run.grpc = run.srv.NewGRPCServer(a.opts.ServerOptions...)
	go run.grpc.Serve(run.lis)
	if run.tcp != nil {
		a.tcpAddr = run.tcp.Addr().String()
		go run.grpc.Serve(run.tcp)
	}
	a.mu.Lock()
	if a.AdminKey == "" {
		a.AdminKey = key
	}
	a.storeID = store.StoreID()
	a.run = run
	a.mu.Unlock()
	a.lis.Store(run.lis)
	return nil
}

// stopLocked stops the running instance, if any, and closes and checks its
// store. a.mu is held.
func (a *Authority) stopLocked() error {
	run := a.run
	if run == nil {
		return nil
	}
	a.run = nil
	a.lis.Store(nil)
	run.srv.Shutdown() // ends the Watch streams with Unavailable
	run.grpc.Stop()    // closes the listeners and the connections
	if err := run.store.Close(); err != nil {
		return err
	}
	return a.backend.check()
}
