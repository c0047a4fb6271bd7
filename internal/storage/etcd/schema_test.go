package etcd_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portcullis-dev/portcullis/internal/storage/etcd"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd/etcdtest"
)

// rawSchema reads the schema version of the meta record as stored.
func rawSchema(t *testing.T, cli *clientv3.Client, prefix string) int {
	t.Helper()
	resp, err := cli.Get(t.Context(), prefix+"/meta/store")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 {
		t.Fatalf("meta record: %d keys", len(resp.Kvs))
	}
	var m struct {
		Schema int `json:"schema"`
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &m); err != nil {
		t.Fatal(err)
	}
	return m.Schema
}

// A new store is created at schema 2; a store of any other schema, older
// (there is no migration before 1.0) or newer, is refused and left as it
// is.
func TestOpenSchemaVersions(t *testing.T) {
	m := etcdtest.Start(t, etcdtest.Config{UnsafeNoFsync: true})
	cli := etcdtest.Client(t, m)

	fresh := etcdtest.NewPrefix()
	etcdtest.Open(t, etcd.Options{Prefix: fresh}, m)
	if schema := rawSchema(t, cli, fresh); schema != 3 {
		t.Errorf("a new store has schema %d, want 3", schema)
	}

	for _, v := range []int{1, 2, 4} {
		prefix := etcdtest.NewPrefix()
		meta := fmt.Sprintf(`{"schema":%d,"nonce":"00112233445566778899aabbccddeeff"}`, v)
		if _, err := cli.Put(t.Context(), prefix+"/meta/store", meta); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		s, err := etcd.Open(ctx, etcd.Options{Prefix: prefix, Endpoints: etcdtest.Endpoints(m)})
		cancel()
		if err == nil {
			s.Close()
			t.Fatalf("Open accepted a store of schema %d", v)
		}
		if want := fmt.Sprintf("unsupported schema version %d", v); !strings.Contains(err.Error(), want) {
			t.Errorf("Open of a schema-%d store: %v, want an error containing %q", v, err, want)
		}
		if schema := rawSchema(t, cli, prefix); schema != v {
			t.Errorf("the refused store's meta record now says schema %d, want %d", schema, v)
		}
	}
}
