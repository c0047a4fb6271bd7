package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
	"github.com/portcullis-dev/portcullis/internal/storage/bolt"
)

// startServe runs `serve` in-process on loopback port 0 and returns the
// gRPC address it logged, and a function that stops it (as SIGTERM would)
// and returns serve's error.
func startServe(t *testing.T, data string) (addr string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	cfg := serveConfig{
		listen: "127.0.0.1:0", dataDir: data, logFormat: "json", logLevel: "info",
		checkpointInterval: time.Second, retainRevisions: 1000, shutdownTimeout: 5 * time.Second,
	}
	go func() { errc <- serve(ctx, cfg, pw); pw.Close() }()
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		var line struct {
			Msg  string `json:"msg"`
			GRPC string `json:"grpc"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "portcullis serving" {
			addr = line.GRPC
			break
		}
	}
	if addr == "" {
		cancel()
		t.Fatalf("serve did not start: %v", <-errc)
	}
	go io.Copy(io.Discard, pr) // keep draining the log
	return addr, func() error { cancel(); return <-errc }
}

func TestServeBootstrapsAndRestarts(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	addr, stop := startServe(t, data)

	keyFile := filepath.Join(data, "admin.key")
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.key mode %v, want 0600", fi.Mode().Perm())
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	call := func(addr string) *pb.CreateBanResponse {
		t.Helper()
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+strings.TrimSpace(string(key)))
		resp, err := pb.NewBanServiceClient(conn).CreateBan(ctx, &pb.CreateBanRequest{Subject: &pb.Subject{Kind: &pb.Subject_UserId{UserId: "mallory"}}})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	first := call(addr)
	if err := stop(); err != nil {
		t.Fatalf("serve returned %v after a clean shutdown", err)
	}
	if err := bolt.Check(filepath.Join(data, "portcullis.db")); err != nil {
		t.Fatal(err)
	}

	// A restart keeps the bootstrap key (not re-created) and the data.
	addr, stop = startServe(t, data)
	again, err := os.ReadFile(keyFile)
	if err != nil || string(again) != string(key) {
		t.Fatalf("admin.key changed on restart")
	}
	second := call(addr)
	if second.GetBan().GetBanId() == first.GetBan().GetBanId() {
		t.Fatal("same ban id twice")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestServeRefusesPlaintextOffLoopback(t *testing.T) {
	code := run([]string{"serve", "--listen", "0.0.0.0:0", "--data", t.TempDir()})
	if code != exitUsage {
		t.Fatalf("exit code %d, want %d", code, exitUsage)
	}
	if code := run([]string{"serve", "--no-such-flag"}); code != exitUsage {
		t.Fatalf("unknown flag: exit code %d, want %d", code, exitUsage)
	}
}
