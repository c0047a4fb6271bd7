package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/portcullis-dev/portcullis/internal/storage"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd/etcdtest"
)

// storeFlag describes -store for the header line.
func storeFlag(store, dir string) string {
	switch {
	case store == "" || store == "bolt":
		return "bbolt in " + dir
	case store == "etcd":
		return "etcd (embedded, one member, fsync on) in " + dir
	default:
		return "etcd at " + strings.TrimPrefix(store, "etcd://")
	}
}

// checkStoreFlag validates -store before anything starts.
func checkStoreFlag(store string) error {
	if store == "" || store == "bolt" || store == "etcd" ||
		(strings.HasPrefix(store, "etcd://") && len(store) > len("etcd://")) {
		return nil
	}
	return fmt.Errorf("-store %q: want bolt, etcd (an embedded server) or etcd://host:port[,host:port]", store)
}

var prefixSeq atomic.Int64

// openStore opens the store an authority of the harness runs on, in dir:
// a bbolt file, an embedded etcd member (its data in dir), or a fresh
// prefix of an external etcd cluster; dir is created if need be. close
// releases all of it.
func openStore(store, dir string, log *slog.Logger) (s storage.Store, close func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	if store == "" || store == "bolt" {
		b, err := bolt.Open(filepath.Join(dir, "portcullis.db"), bolt.Options{Logger: log})
		if err != nil {
			return nil, nil, err
		}
		return b, func() { b.Close() }, nil
	}
	var endpoints []string
	stopMember := func() {}
	if store == "etcd" {
		m, err := etcdtest.StartDir(filepath.Join(dir, "etcd"), etcdtest.Config{})
		if err != nil {
			return nil, nil, err
		}
		endpoints, stopMember = []string{m.Endpoint()}, m.Stop
	} else {
		endpoints = strings.Split(strings.TrimPrefix(store, "etcd://"), ",")
	}
	// A prefix of its own per authority: runs never see each other's data.
	prefix := fmt.Sprintf("/portcullis-bench-%d-%d-%d", os.Getpid(), time.Now().UnixNano(), prefixSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := etcd.Open(ctx, etcd.Options{Endpoints: endpoints, Prefix: prefix, Logger: log})
	if err != nil {
		stopMember()
		return nil, nil, err
	}
	return e, func() {
		e.Close()
		if store != "etcd" {
			deletePrefix(endpoints, prefix, log)
		}
		stopMember()
	}, nil
}

// deletePrefix removes what a run wrote to an external cluster.
func deletePrefix(endpoints []string, prefix string, log *slog.Logger) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err = cli.Delete(ctx, prefix+"/", clientv3.WithPrefix())
		cancel()
		cli.Close()
	}
	if err != nil {
		log.Error("bench: could not delete the run's keys", "prefix", prefix, "error", err)
	}
}
