package main

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/storage/etcd/etcdtest"
)

func TestParseStore(t *testing.T) {
	for _, c := range []struct {
		url  string
		want storeTarget
		err  bool
	}{
		{"", storeTarget{kind: "bolt", path: filepath.Join("d", "portcullis.db")}, false},
		{"bolt:///var/lib/p.db", storeTarget{kind: "bolt", path: "/var/lib/p.db"}, false},
		{"bolt://rel/p.db", storeTarget{kind: "bolt", path: "rel/p.db"}, false},
		{"bolt://", storeTarget{}, true},
		{"etcd://127.0.0.1:2379", storeTarget{kind: "etcd", endpoints: []string{"127.0.0.1:2379"}}, false},
		{"etcd://a:2379, b:2379,", storeTarget{kind: "etcd", endpoints: []string{"a:2379", "b:2379"}}, false},
		{"etcd://", storeTarget{}, true},
		{"redis://x", storeTarget{}, true},
		{"/var/lib/p.db", storeTarget{}, true},
	} {
		got, err := parseStore(c.url, "d")
		if (err != nil) != c.err || (!c.err && !reflect.DeepEqual(got, c.want)) {
			t.Errorf("parseStore(%q) = %+v, %v; want %+v (error: %v)", c.url, got, err, c.want, c.err)
		}
	}
}

// TestServeEtcdReplicas: two `serve` processes (in-process here) over one
// etcd server with --store etcd://: exactly one creates the bootstrap key
// and writes it to its data directory; a ban created through one is
// listed by the other.
func TestServeEtcdReplicas(t *testing.T) {
	m := etcdtest.Start(t, etcdtest.Config{})
	prefix := etcdtest.NewPrefix()
	var addrs, datas []string
	for i := range 2 {
		data := filepath.Join(t.TempDir(), "data")
		cfg := serveConfig{dataDir: data, store: storeConfig{url: "etcd://" + m.Endpoint(), prefix: prefix}}
		addr, stop := startServeConfig(t, cfg, nil)
		t.Cleanup(func() {
			if err := stop(); err != nil {
				t.Errorf("replica %d: %v", i, err)
			}
		})
		addrs, datas = append(addrs, addr), append(datas, data)
	}
	key, err := os.ReadFile(filepath.Join(datas[0], "admin.key"))
	if err != nil {
		t.Fatalf("the first replica did not write admin.key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(datas[1], "admin.key")); !os.IsNotExist(err) {
		t.Fatalf("the second replica wrote admin.key too (%v)", err)
	}
	for _, d := range datas {
		if _, err := os.Stat(filepath.Join(d, "portcullis.db")); !os.IsNotExist(err) {
			t.Fatalf("a replica over etcd created a bbolt file (%v)", err)
		}
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+strings.TrimSpace(string(key)))
	clients := make([]pb.BanServiceClient, len(addrs))
	for i, a := range addrs {
		conn, err := grpc.NewClient(a, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		clients[i] = pb.NewBanServiceClient(conn)
	}
	created, err := clients[0].CreateBan(ctx, &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "mallory"}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := clients[1].GetBan(ctx, &pb.GetBanRequest{BanId: created.GetBan().GetBanId()})
	if err != nil || got.GetBan().GetBanId() != created.GetBan().GetBanId() {
		t.Fatalf("GetBan on the other replica: %v, %v", got, err)
	}
}

func TestStoreFlagErrors(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	for _, c := range []struct {
		store storeConfig
		want  string
	}{
		{storeConfig{url: "mysql://x"}, "want bolt://PATH or etcd://"},
		{storeConfig{etcdCA: "ca.pem"}, "need --store etcd://"},
		{storeConfig{url: "etcd://127.0.0.1:1", etcdCert: "c.pem"}, "--etcd-cert and --etcd-key go together"},
		{storeConfig{etcdUser: "portcullis"}, "need --store etcd://"},
		{storeConfig{url: "etcd://127.0.0.1:1", etcdUser: "portcullis"}, "--etcd-user and --etcd-password-file go together"},
	} {
		cfg := serveConfig{listen: "127.0.0.1:0", dataDir: data, logFormat: "json", logLevel: "info", store: c.store}
		err := serve(t.Context(), cfg, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("serve with %+v: %v, want an error containing %q", c.store, err, c.want)
		}
	}
}

// TestServeEtcdAuth: against an etcd with authentication on, serve works
// with --etcd-user and --etcd-password-file, and fails to start with a
// wrong password.
func TestServeEtcdAuth(t *testing.T) {
	m := etcdtest.Start(t, etcdtest.Config{})
	cli := etcdtest.Client(t, m)
	ctx := t.Context()
	if _, err := cli.UserAdd(ctx, "root", "s3cret-root"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	writeFile(t, good, []byte("s3cret-root\n"))
	writeFile(t, bad, []byte("guess\n"))
	store := storeConfig{url: "etcd://" + m.Endpoint(), prefix: etcdtest.NewPrefix(), etcdUser: "root", etcdPass: bad}

	cfg := serveConfig{listen: "127.0.0.1:0", dataDir: filepath.Join(dir, "data-bad"), logFormat: "json", logLevel: "info", store: store}
	if err := serve(ctx, cfg, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("serve with a wrong etcd password: %v, want authentication failed", err)
	}

	store.etcdPass = good
	data := filepath.Join(dir, "data")
	addr, stop := startServeConfig(t, serveConfig{dataDir: data, store: store}, nil)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	key := strings.TrimSpace(string(mustRead(t, filepath.Join(data, "admin.key"))))
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
	if _, err := pb.NewBanServiceClient(conn).CreateBan(actx, &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "mallory"}}}); err != nil {
		t.Fatalf("CreateBan over an authenticated etcd: %v", err)
	}
}
